//! Every endpoint against every kind of caller: no credentials, a wrong key, a valid user
//! who is not in the account, a member without the permission the endpoint needs, a token
//! without the permission group, another account's own token, and the owner. Each gets its
//! exact status and code, and no answer ever carries a secret.

use roster::auth::hash_secret;
use serde_json::{Value, json};

use crate::helpers::*;

const DNS: &str = "87e7860bc4c445faba075646dac38cca";
const ADMIN_RO: &str = "25a6523fbf0a4cdaa8af77b778c7dd19";
const ZONE_READ: &str = "c8fed203ed3043cba015a93ad1616f1f";

/// What an endpoint needs.
#[derive(Clone, Copy)]
enum Needs {
    /// An account endpoint: organization read or write in that account.
    AccountRead,
    AccountWrite,
    /// The caller's own records; `theirs` when the path names the owner's object, which
    /// another user must not see.
    User {
        theirs: bool,
    },
    /// `/user/tokens/verify`: the bearer token itself.
    Verify,
    /// `/accounts/{id}/tokens/verify`: a bearer token of that account.
    AccountVerify,
    /// `GET /accounts`: the accounts the caller (and token) reaches, maybe none.
    Listing,
}

struct Endpoint {
    method: &'static str,
    path: String,
    body: Option<Value>,
    needs: Needs,
}

#[tokio::test]
async fn every_endpoint_answers_every_kind_of_caller_exactly() {
    // Hundreds of wrong credentials from one address: the throttling of failed
    // authentications (tests/api/limits.rs) would answer them 429.
    let server = TestServer::start_with(&roster::api::Limits {
        failed_auth: None,
        ..roster::api::Limits::default()
    })
    .await;
    let owner = server.user("owner@example.com").await;
    let outsider = server.user("outsider@example.com").await;
    let zone_reader = server.user("zones@example.com").await;
    let reader = server.user("reader@example.com").await;
    let host = server.user("host@example.com").await;
    let a = server.account(&owner, "A").await;
    server.add_member(&owner, &a, &reader, &[ADMIN_RO]).await;
    // Targets the owner's successful writes use up.
    let to_update = server
        .invite(&owner, &a, "update@example.com", &[DNS])
        .await;
    let to_remove = server
        .invite(&owner, &a, "remove@example.com", &[DNS])
        .await;
    let group = server
        .as_user(&owner)
        .post(
            &format!("/accounts/{a}/iam/resource_groups"),
            json!({"name": "g", "scope": {"key": format!("com.cloudflare.api.account.{a}"), "objects": [{"key": "*"}]}}),
        )
        .await
        .result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A member whose policy grants zone reading only, so not even the account's settings.
    let zones = server
        .as_user(&owner)
        .post(
            &format!("/accounts/{a}/iam/resource_groups"),
            json!({"name": "zones", "scope": {"key": format!("com.cloudflare.api.account.{a}"), "objects": [{"key": "*"}]}}),
        )
        .await
        .result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let invited = server
        .as_user(&owner)
        .post(
            &format!("/accounts/{a}/members"),
            json!({"email": zone_reader.email, "policies": [{"access": "allow",
                   "permission_groups": [{"id": ZONE_READ}], "resource_groups": [{"id": zones}]}]}),
        )
        .await
        .result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .as_user(&zone_reader)
        .put(
            &format!("/memberships/{invited}"),
            json!({"status": "accepted"}),
        )
        .await
        .result();
    // An invitation to the owner from another account, to read, accept and leave; and one
    // to answer as an invite.
    let b = server.account(&host, "B").await;
    let invitation = server.invite(&host, &b, &owner.email, &[DNS]).await;
    let e_account = server.account(&host, "E").await;
    let invite = server.invite(&host, &e_account, &owner.email, &[DNS]).await;
    // A user group to read, fill, empty and delete.
    let ug = server
        .as_user(&owner)
        .post(
            &format!("/accounts/{a}/iam/user_groups"),
            json!({"name": "ug"}),
        )
        .await
        .result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // An account for the owner to delete, with the weak members of the first.
    let doomed = server.account(&owner, "D").await;
    server
        .add_member(&owner, &doomed, &reader, &[ADMIN_RO])
        .await;
    // A token of the owner to manage, and one with an unrelated group.
    let created = server
        .as_user(&owner)
        .post(
            "/user/tokens",
            json!({"name": "target", "policies": [{"effect": "allow", "permission_groups": [{"id": ZONE_READ}],
                   "resources": {"com.cloudflare.api.account.*": "*"}}]}),
        )
        .await;
    let token_id = created.result()["id"].as_str().unwrap().to_string();
    let target_secret = created.result()["value"].as_str().unwrap().to_string();
    let unrelated = server.token(&owner, &["Billing Read"]).await;
    // An account token of A to manage, and one to verify with.
    let account_token_body = json!({"name": "acct", "policies": [{"effect": "allow",
        "permission_groups": [{"id": ZONE_READ}],
        "resources": {format!("com.cloudflare.api.account.{a}"): "*"}}]});
    let made = server
        .as_user(&owner)
        .post(&format!("/accounts/{a}/tokens"), account_token_body.clone())
        .await;
    let account_token = made.result()["id"].as_str().unwrap().to_string();
    let account_secret = made.result()["value"].as_str().unwrap().to_string();
    // Another account's token, with zone reading there: a stranger to A and to every user.
    let foreign = server
        .as_user(&host)
        .post(
            &format!("/accounts/{b}/tokens"),
            json!({"name": "b", "policies": [{"effect": "allow",
                "permission_groups": [{"id": ZONE_READ}],
                "resources": {format!("com.cloudflare.api.account.{b}"): "*"}}]}),
        )
        .await;
    let foreign = foreign.result()["value"].as_str().unwrap().to_string();

    // An entry of A's log, whose resource's history to read.
    let logged = server
        .as_user(&owner)
        .get(&format!(
            "/accounts/{a}/logs/audit?since=2000-01-01&before=2999-01-01&limit=1"
        ))
        .await;
    let entry = logged.result()[0]["id"].as_str().unwrap().to_string();
    let entry_time = logged.result()[0]["action"]["time"]
        .as_str()
        .unwrap()
        .to_string();
    let token_body = json!({"name": "t", "policies": [{"effect": "allow", "permission_groups": [{"id": ZONE_READ}],
                            "resources": {"com.cloudflare.api.account.*": "*"}}]});
    let e = |method, path: String, body: Option<Value>, needs| Endpoint {
        method,
        path,
        body,
        needs,
    };
    use Needs::*;
    let endpoints = vec![
        e("GET", format!("/accounts/{a}"), None, AccountRead),
        e(
            "PUT",
            format!("/accounts/{a}"),
            Some(json!({"name": "A2"})),
            AccountWrite,
        ),
        e("GET", format!("/accounts/{a}/members"), None, AccountRead),
        e(
            "POST",
            format!("/accounts/{a}/members"),
            Some(json!({"email": "new@example.com", "roles": [DNS]})),
            AccountWrite,
        ),
        e(
            "GET",
            format!("/accounts/{a}/members/{to_update}"),
            None,
            AccountRead,
        ),
        e(
            "PUT",
            format!("/accounts/{a}/members/{to_update}"),
            Some(json!({"roles": [ADMIN_RO]})),
            AccountWrite,
        ),
        e(
            "DELETE",
            format!("/accounts/{a}/members/{to_remove}"),
            None,
            AccountWrite,
        ),
        e("GET", format!("/accounts/{a}/roles"), None, AccountRead),
        e(
            "GET",
            format!("/accounts/{a}/roles/{DNS}"),
            None,
            AccountRead,
        ),
        e(
            "GET",
            format!("/accounts/{a}/iam/permission_groups"),
            None,
            AccountRead,
        ),
        e(
            "GET",
            format!("/accounts/{a}/iam/permission_groups/{ZONE_READ}"),
            None,
            AccountRead,
        ),
        e(
            "GET",
            format!("/accounts/{a}/iam/resource_groups"),
            None,
            AccountRead,
        ),
        e(
            "POST",
            format!("/accounts/{a}/iam/resource_groups"),
            Some(
                json!({"name": "h", "scope": {"key": format!("com.cloudflare.api.account.{a}"), "objects": [{"key": "*"}]}}),
            ),
            AccountWrite,
        ),
        e(
            "GET",
            format!("/accounts/{a}/iam/resource_groups/{group}"),
            None,
            AccountRead,
        ),
        e(
            "PUT",
            format!("/accounts/{a}/iam/resource_groups/{group}"),
            Some(json!({"name": "g2"})),
            AccountWrite,
        ),
        e(
            "DELETE",
            format!("/accounts/{a}/iam/resource_groups/{group}"),
            None,
            AccountWrite,
        ),
        e("GET", "/accounts".into(), None, Listing),
        e(
            "POST",
            "/accounts".into(),
            Some(json!({"name": "C"})),
            User { theirs: false },
        ),
        e("GET", "/memberships".into(), None, User { theirs: false }),
        e(
            "GET",
            format!("/memberships/{invitation}"),
            None,
            User { theirs: true },
        ),
        e(
            "PUT",
            format!("/memberships/{invitation}"),
            Some(json!({"status": "accepted"})),
            User { theirs: true },
        ),
        e(
            "DELETE",
            format!("/memberships/{invitation}"),
            None,
            User { theirs: true },
        ),
        e("GET", "/user".into(), None, User { theirs: false }),
        e(
            "PATCH",
            "/user".into(),
            Some(json!({"first_name": "O"})),
            User { theirs: false },
        ),
        e("GET", "/user/tokens".into(), None, User { theirs: false }),
        e(
            "POST",
            "/user/tokens".into(),
            Some(token_body.clone()),
            User { theirs: false },
        ),
        e(
            "GET",
            "/user/tokens/permission_groups".into(),
            None,
            User { theirs: false },
        ),
        e(
            "GET",
            format!("/user/tokens/{token_id}"),
            None,
            User { theirs: true },
        ),
        e(
            "PUT",
            format!("/user/tokens/{token_id}"),
            Some(token_body),
            User { theirs: true },
        ),
        e(
            "PUT",
            format!("/user/tokens/{token_id}/value"),
            None,
            User { theirs: true },
        ),
        e(
            "DELETE",
            format!("/user/tokens/{token_id}"),
            None,
            User { theirs: true },
        ),
        e("GET", "/user/tokens/verify".into(), None, Verify),
        e("GET", "/user/invites".into(), None, User { theirs: false }),
        e(
            "GET",
            format!("/user/invites/{invite}"),
            None,
            User { theirs: true },
        ),
        e(
            "PATCH",
            format!("/user/invites/{invite}"),
            Some(json!({"status": "accepted"})),
            User { theirs: true },
        ),
        e("DELETE", format!("/accounts/{doomed}"), None, AccountWrite),
        e(
            "GET",
            format!("/accounts/{a}/iam/user_groups"),
            None,
            AccountRead,
        ),
        e(
            "POST",
            format!("/accounts/{a}/iam/user_groups"),
            Some(json!({"name": "another"})),
            AccountWrite,
        ),
        e(
            "GET",
            format!("/accounts/{a}/iam/user_groups/{ug}"),
            None,
            AccountRead,
        ),
        e(
            "PUT",
            format!("/accounts/{a}/iam/user_groups/{ug}"),
            Some(json!({"name": "ug2"})),
            AccountWrite,
        ),
        e(
            "POST",
            format!("/accounts/{a}/iam/user_groups/{ug}/members"),
            Some(json!({"members": [{"id": to_update}]})),
            AccountWrite,
        ),
        e(
            "PUT",
            format!("/accounts/{a}/iam/user_groups/{ug}/members"),
            Some(json!({"members": [{"id": to_update}]})),
            AccountWrite,
        ),
        e(
            "GET",
            format!("/accounts/{a}/iam/user_groups/{ug}/members"),
            None,
            AccountRead,
        ),
        e(
            "GET",
            format!("/accounts/{a}/iam/user_groups/{ug}/members/{to_update}"),
            None,
            AccountRead,
        ),
        e(
            "DELETE",
            format!("/accounts/{a}/iam/user_groups/{ug}/members/{to_update}"),
            None,
            AccountWrite,
        ),
        e(
            "DELETE",
            format!("/accounts/{a}/iam/user_groups/{ug}"),
            None,
            AccountWrite,
        ),
        e(
            "GET",
            format!("/accounts/{a}/audit_logs"),
            None,
            AccountRead,
        ),
        e(
            "GET",
            format!("/accounts/{a}/logs/audit?since=2000-01-01&before=2999-01-01"),
            None,
            AccountRead,
        ),
        e(
            "GET",
            format!("/accounts/{a}/logs/audit/product_categories"),
            None,
            AccountRead,
        ),
        e(
            "GET",
            format!(
                "/accounts/{a}/logs/audit/{entry}/history?action_time={entry_time}&since=2000-01-01&before=2999-01-01"
            ),
            None,
            AccountRead,
        ),
        e(
            "GET",
            "/user/audit_logs".into(),
            None,
            User { theirs: false },
        ),
        e("GET", format!("/accounts/{a}/tokens"), None, AccountRead),
        e(
            "POST",
            format!("/accounts/{a}/tokens"),
            Some(account_token_body.clone()),
            AccountWrite,
        ),
        e(
            "GET",
            format!("/accounts/{a}/tokens/permission_groups"),
            None,
            AccountRead,
        ),
        e(
            "GET",
            format!("/accounts/{a}/tokens/{account_token}"),
            None,
            AccountRead,
        ),
        e(
            "PUT",
            format!("/accounts/{a}/tokens/{account_token}"),
            Some(account_token_body),
            AccountWrite,
        ),
        e(
            "GET",
            format!("/accounts/{a}/tokens/verify"),
            None,
            AccountVerify,
        ),
        e(
            "PUT",
            format!("/accounts/{a}/tokens/{account_token}/value"),
            Some(json!({})),
            AccountWrite,
        ),
        e(
            "DELETE",
            format!("/accounts/{a}/tokens/{account_token}"),
            None,
            AccountWrite,
        ),
    ];

    let wrong_key = Creds {
        email: owner.email.clone(),
        key: "0".repeat(37),
    };
    let mut secrets = vec![
        owner.key.clone(),
        outsider.key.clone(),
        unrelated.clone(),
        target_secret,
        account_secret.clone(),
        foreign.clone(),
    ];
    secrets.extend(secrets.clone().iter().map(|s| hash_secret(s)));
    let mut cases = 0;
    for ep in &endpoints {
        // (who, expected status and code, or None where the caller kind does not apply)
        let weak = match ep.needs {
            AccountRead => Some(server.as_user(&zone_reader)),
            AccountWrite => Some(server.as_user(&reader)),
            _ => None,
        };
        let outsider_expects = match ep.needs {
            AccountRead | AccountWrite => Some((404, 1003)),
            User { theirs: true } => Some((404, 1003)),
            // Their own (empty) records, or no token to verify.
            User { theirs: false } | Listing => None,
            Verify | AccountVerify => Some((400, 6003)),
        };
        let token_expects = match ep.needs {
            Verify | Listing => (200, 0),
            // A user's token is no account's.
            AccountVerify => (403, 10000),
            _ => (403, 9109),
        };
        let foreign_expects = match ep.needs {
            AccountRead | AccountWrite => (404, 1003),
            User { .. } => (403, 9109),
            Verify | AccountVerify => (403, 10000),
            Listing => (200, 0),
        };
        let callers = [
            (
                "another account's token",
                Some(server.with_token(&foreign)),
                Some(foreign_expects),
            ),
            (
                "no credentials",
                Some(server.anonymous()),
                Some((400, 9106)),
            ),
            (
                "wrong key",
                Some(server.as_user(&wrong_key)),
                Some((403, 9103)),
            ),
            (
                "not a member",
                Some(server.as_user(&outsider)),
                outsider_expects,
            ),
            ("member without the permission", weak, Some((403, 9109))),
            (
                "token without the group",
                Some(server.with_token(&unrelated)),
                Some(token_expects),
            ),
        ];
        for (kind, client, expected) in callers {
            let (Some(client), Some((status, code))) = (client, expected) else {
                continue;
            };
            let r = send(&client, ep).await;
            let what = format!("{} {} as {kind}", ep.method, ep.path);
            assert_eq!(r.status, status, "{what}: {}", r.body);
            if code != 0 {
                assert_eq!(r.error_code(), code, "{what}: {}", r.body);
            }
            assert_no_secret(&r.body, &secrets, &what);
            if matches!(ep.needs, Listing)
                && matches!(kind, "token without the group" | "another account's token")
            {
                assert_eq!(r.body["result"], json!([]), "{what}: lists nothing");
            }
            cases += 1;
        }
        // Last, the owner (a bearer token for verify), which may change things.
        let valid = match ep.needs {
            Verify => server.with_token(&unrelated),
            AccountVerify => server.with_token(&account_secret),
            _ => server.as_user(&owner),
        };
        let r = send(&valid, ep).await;
        let what = format!("{} {} as the owner", ep.method, ep.path);
        assert_eq!(r.status, 200, "{what}: {}", r.body);
        let mut allowed = secrets.clone();
        if ep.path.ends_with("/value") || (ep.method == "POST" && ep.path.ends_with("/tokens")) {
            // The new secret is the answer; none of the others.
            let fresh = if ep.path.ends_with("/value") {
                &r.body["result"]
            } else {
                &r.body["result"]["value"]
            };
            allowed.retain(|s| Some(s.as_str()) != fresh.as_str());
        }
        assert_no_secret(&r.body, &allowed, &what);
        cases += 1;
    }
    assert!(cases > 150, "{cases} cases");
}

async fn send(client: &Client, ep: &Endpoint) -> Resp {
    let method = reqwest::Method::from_bytes(ep.method.as_bytes()).unwrap();
    client
        .send(method, &ep.path, ep.body.as_ref().map(Value::to_string))
        .await
}

fn assert_no_secret(body: &Value, secrets: &[String], what: &str) {
    let text = body.to_string();
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "{what}: the answer holds a secret: {text}"
        );
    }
}
