//! The demo holds the objects Cloudflare's API reference and SDK examples name (docs/api.md,
//! "Cloudflare's documentation examples in the demo"), so that a snippet copied from there
//! runs against `roster serve --demo` as written. Each is fetched here by its example id,
//! through the endpoint whose example names it.

use serde_json::Value;

use crate::helpers::*;

/// The id the examples use for the account, and also for a resource group, a user group
/// and a member in it.
const EXAMPLE: &str = "023e105f4ecef8ad9ca31a8372d0c353";

#[tokio::test]
async fn every_example_id_is_in_the_demo_as_the_kind_its_example_names() {
    let server = TestServer::demo().await;
    let demo = server.as_user(&Creds::demo());
    let get = |path: String| {
        let demo = &demo;
        async move {
            let r = demo.get(&path).await;
            assert_eq!(r.status, 200, "GET {path}: {}", r.body);
            r.result().clone()
        }
    };
    let id = |v: &Value| v["id"].as_str().unwrap_or_default().to_string();

    // accounts.get, and every account-scoped example's account_id.
    let account = get(format!("/accounts/{EXAMPLE}")).await;
    assert_eq!(id(&account), EXAMPLE);
    assert_eq!(account["name"], "Demo Account");

    // user.tokens.get / update / delete / value.update.
    let token = get("/user/tokens/ed17574386854bf78a67040be0a770b0".into()).await;
    assert_eq!(id(&token), "ed17574386854bf78a67040be0a770b0");
    assert_eq!(token["name"], "readonly token");
    let groups: Vec<&str> = token["policies"][0]["permission_groups"]
        .as_array()
        .expect("a token's policy names permission groups")
        .iter()
        .filter_map(|g| g["id"].as_str())
        .collect();
    assert_eq!(
        groups,
        [
            "c8fed203ed3043cba015a93ad1616f1f",
            "82e64a83756745bbbb1c9c2701bf816b"
        ]
    );
    // The permission groups the token examples' policies name.
    for (group, name) in [
        ("c8fed203ed3043cba015a93ad1616f1f", "Zone Read"),
        (
            "82e64a83756745bbbb1c9c2701bf816b",
            "Magic Network Monitoring",
        ),
    ] {
        let g = get(format!("/accounts/{EXAMPLE}/iam/permission_groups/{group}")).await;
        assert_eq!(id(&g), group);
        assert_eq!(g["name"], name);
    }

    // accounts.members.get / update / delete, and memberships.get / update / delete.
    let member = get(format!(
        "/accounts/{EXAMPLE}/members/4536bcfad5faccb111b47003c79917fa"
    ))
    .await;
    assert_eq!(id(&member), "4536bcfad5faccb111b47003c79917fa");
    assert_eq!(member["user"]["email"], "user@example.com");
    let membership = get("/memberships/4536bcfad5faccb111b47003c79917fa".into()).await;
    assert_eq!(id(&membership), "4536bcfad5faccb111b47003c79917fa");
    assert_eq!(membership["account"]["id"], EXAMPLE);

    // accounts.members.create's role, and accounts.roles.get.
    let role = get(format!(
        "/accounts/{EXAMPLE}/roles/3536bcfad5faccb999b47003c79917fb"
    ))
    .await;
    assert_eq!(id(&role), "3536bcfad5faccb999b47003c79917fb");
    assert_eq!(role["name"], "Account Administrator");

    // iam.resource_groups.get / update / delete (the SDKs' example id, and the schema's).
    for group in [EXAMPLE, "6d7f2f5f5b1d4a0e9081fdc98d432fd1"] {
        let g = get(format!("/accounts/{EXAMPLE}/iam/resource_groups/{group}")).await;
        assert_eq!(id(&g), group);
        assert_eq!(
            g["scope"]["key"],
            format!("com.cloudflare.api.account.{EXAMPLE}")
        );
    }

    // iam.user_groups.get / update / delete, and its members' get / delete.
    let group = get(format!("/accounts/{EXAMPLE}/iam/user_groups/{EXAMPLE}")).await;
    assert_eq!(id(&group), EXAMPLE);
    assert_eq!(group["name"], "Documentation example");
    let in_group = get(format!(
        "/accounts/{EXAMPLE}/iam/user_groups/{EXAMPLE}/members/{EXAMPLE}"
    ))
    .await;
    assert_eq!(id(&in_group), EXAMPLE);
    assert_eq!(in_group["email"], "ivan@example.com");
    let member = get(format!("/accounts/{EXAMPLE}/members/{EXAMPLE}")).await;
    assert_eq!(member["user"]["email"], "ivan@example.com");

    // user.invites.get / edit.
    let invite = get("/user/invites/4f5f0c14a2a41d5063dd301b2f829f04".into()).await;
    assert_eq!(id(&invite), "4f5f0c14a2a41d5063dd301b2f829f04");
    assert_eq!(invite["organization_name"], "Acme Corp");
    assert_eq!(invite["status"], "pending");
}
