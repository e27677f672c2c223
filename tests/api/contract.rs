//! Walks every operation of the contract with a successful and a failing request, so that
//! each endpoint's success and error bodies are validated against the OpenAPI schema.

use serde_json::json;

use crate::helpers::*;
use crate::schema;

/// `/user/tokens*` (token management over the API) is outside Roster's scope for now:
/// tokens are made with `roster token create`.
fn served(template: &str) -> bool {
    !template.starts_with("/user/tokens")
}

#[tokio::test]
async fn every_operation_answers_success_and_failure_per_the_schema() {
    let server = TestServer::demo().await;
    let demo = server.as_user(&Creds::demo());
    let stranger = server.as_user(&server.user("stranger@example.com").await);
    let acct = format!("/accounts/{DEMO_ACCOUNT}");
    let missing = "00000000000000000000000000000000";

    demo.get("/user").await.result();
    server
        .anonymous()
        .get("/user")
        .await
        .expect_error(400, 9106);
    demo.patch("/user", json!({"zipcode": "12345"}))
        .await
        .result();
    demo.patch("/user", json!({"zipcode": "x".repeat(21)}))
        .await
        .expect_error(400, 1002);

    demo.get("/accounts").await.result();
    demo.get("/accounts?per_page=2")
        .await
        .expect_error(400, 1002);
    demo.get(&acct).await.result();
    stranger.get(&acct).await.expect_error(404, 1003);
    demo.put(&acct, json!({"name": "Demo Account"}))
        .await
        .result();
    demo.put(&acct, json!({"name": ""}))
        .await
        .expect_error(400, 1002);

    demo.get("/memberships").await.result();
    demo.get("/memberships?status=maybe")
        .await
        .expect_error(400, 1002);
    demo.get(&format!("/memberships/{DEMO_MEMBERSHIP}"))
        .await
        .result();
    demo.get(&format!("/memberships/{missing}"))
        .await
        .expect_error(404, 1003);

    demo.get(&format!("{acct}/roles")).await.result();
    stranger
        .get(&format!("{acct}/roles"))
        .await
        .expect_error(404, 1003);
    demo.get(&format!("{acct}/roles/{SUPER_ADMIN}"))
        .await
        .result();
    demo.get(&format!("{acct}/roles/{missing}"))
        .await
        .expect_error(404, 1003);

    demo.get(&format!("{acct}/iam/permission_groups"))
        .await
        .result();
    demo.get(&format!("{acct}/iam/permission_groups?per_page=99"))
        .await
        .expect_error(400, 1002);
    demo.get(&format!(
        "{acct}/iam/permission_groups/c8fed203ed3043cba015a93ad1616f1f"
    ))
    .await
    .result();
    demo.get(&format!("{acct}/iam/permission_groups/{missing}"))
        .await
        .expect_error(404, 1003);

    let groups = format!("{acct}/iam/resource_groups");
    demo.get(&groups).await.result();
    stranger.get(&groups).await.expect_error(404, 1003);
    let scope = json!({"key": format!("com.cloudflare.api.account.{DEMO_ACCOUNT}"), "objects": [{"key": "*"}]});
    let created = demo
        .post(&groups, json!({"name": "contract", "scope": scope}))
        .await;
    let group_id = created.result()["id"].as_str().unwrap().to_string();
    demo.post(&groups, json!({"name": "contract", "scope": scope}))
        .await
        .expect_error(409, 1009);
    demo.get(&format!("{groups}/{group_id}")).await.result();
    demo.get(&format!("{groups}/{missing}"))
        .await
        .expect_error(404, 1003);
    demo.put(
        &format!("{groups}/{group_id}"),
        json!({"name": "renamed", "scope": scope}),
    )
    .await
    .result();
    demo.put(
        &format!("{groups}/{group_id}"),
        json!({"name": "renamed", "scope": {"key": "x", "objects": []}}),
    )
    .await
    .expect_error(400, 1002);

    let members = format!("{acct}/members");
    demo.get(&members).await.result();
    demo.get(&format!("{members}?order=nope"))
        .await
        .expect_error(400, 1002);
    let invited = demo
        .post(
            &members,
            json!({"email": "contract@example.com", "roles": [DNS_ROLE]}),
        )
        .await;
    let member_id = invited.result()["id"].as_str().unwrap().to_string();
    demo.post(
        &members,
        json!({"email": "contract@example.com", "roles": [DNS_ROLE]}),
    )
    .await
    .expect_error(409, 1004);
    demo.get(&format!("{members}/{member_id}")).await.result();
    demo.get(&format!("{members}/{missing}"))
        .await
        .expect_error(404, 1003);
    demo.put(
        &format!("{members}/{member_id}"),
        json!({"roles": [{"id": "25a6523fbf0a4cdaa8af77b778c7dd19"}]}),
    )
    .await
    .result();
    demo.put(&format!("{members}/{member_id}"), json!({"roles": []}))
        .await
        .expect_error(400, 1002);
    demo.delete(&format!("{members}/{member_id}"))
        .await
        .result();
    demo.delete(&format!("{members}/{member_id}"))
        .await
        .expect_error(404, 1003);

    demo.delete(&format!("{groups}/{group_id}")).await.result();
    demo.delete(&format!("{groups}/{group_id}"))
        .await
        .expect_error(404, 1003);

    let jane = server.as_user(&Creds {
        email: "jane@example.com".into(),
        key: "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c".into(),
    });
    let invitation = "/memberships/b1f4c3e2d5a6978877665544332211ff";
    jane.put(invitation, json!({"status": "pending"}))
        .await
        .expect_error(400, 1002);
    jane.put(invitation, json!({"status": "accepted"}))
        .await
        .result();
    jane.delete(invitation).await.result();
    jane.delete(invitation).await.expect_error(404, 1003);

    let seen = schema::seen();
    for (method, template) in schema::operations_in_contract() {
        if !served(&template) {
            continue;
        }
        for ok in [true, false] {
            assert!(
                seen.contains(&(method.clone(), template.clone(), ok)),
                "{method} {template}: no {} response was checked",
                if ok { "successful" } else { "failing" }
            );
        }
    }
}
