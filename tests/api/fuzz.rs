//! Property tests of the parsing edge: arbitrary query strings, bodies and path segments
//! sent to every route never make the server panic or answer 5xx, and every answer is the
//! v4 envelope. Requests go to the router in process (no TCP), so thousands run in seconds.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use proptest::prelude::*;
use roster::api::Limits;
use roster::store::{DEFAULT_CREDENTIAL_TTL, SqliteStore, Store};
use serde_json::Value;
use tower::ServiceExt;

const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const MEMBER: &str = "4536bcfad5faccb111b47003c79917fa";

/// Every route, with the demo's ids in place of its parameters.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/memberships"),
    ("GET", "/memberships/{m}"),
    ("PUT", "/memberships/{m}"),
    ("GET", "/accounts"),
    ("POST", "/accounts"),
    ("GET", "/accounts/{a}"),
    ("PUT", "/accounts/{a}"),
    ("GET", "/accounts/{a}/members"),
    ("POST", "/accounts/{a}/members"),
    ("GET", "/accounts/{a}/members/{m}"),
    ("PUT", "/accounts/{a}/members/{m}"),
    ("GET", "/accounts/{a}/roles"),
    ("GET", "/accounts/{a}/iam/permission_groups"),
    ("GET", "/accounts/{a}/iam/resource_groups"),
    ("POST", "/accounts/{a}/iam/resource_groups"),
    (
        "PUT",
        "/accounts/{a}/iam/resource_groups/6d7f2f5f5b1d4a0e9081fdc98d432fd1",
    ),
    ("GET", "/user"),
    ("PATCH", "/user"),
    ("GET", "/user/tokens"),
    ("POST", "/user/tokens"),
    ("GET", "/user/tokens/permission_groups"),
    ("GET", "/user/invites"),
    ("GET", "/user/invites/{m}"),
    ("PATCH", "/user/invites/{m}"),
    ("GET", "/accounts/{a}/iam/user_groups"),
    ("POST", "/accounts/{a}/iam/user_groups"),
    (
        "PUT",
        "/accounts/{a}/iam/user_groups/6d7f2f5f5b1d4a0e9081fdc98d432fd1",
    ),
    (
        "POST",
        "/accounts/{a}/iam/user_groups/6d7f2f5f5b1d4a0e9081fdc98d432fd1/members",
    ),
    (
        "GET",
        "/accounts/{a}/iam/user_groups/6d7f2f5f5b1d4a0e9081fdc98d432fd1/members",
    ),
    ("GET", "/accounts/{a}/audit_logs"),
    ("GET", "/accounts/{a}/logs/audit"),
    ("GET", "/accounts/{a}/logs/audit/product_categories"),
    (
        "GET",
        "/accounts/{a}/logs/audit/f174be97-19b1-40d6-954d-70cd5fbd52db/history",
    ),
    ("GET", "/user/audit_logs"),
    ("GET", "/accounts/{a}/tokens"),
    ("POST", "/accounts/{a}/tokens"),
    ("GET", "/accounts/{a}/tokens/permission_groups"),
    (
        "PUT",
        "/accounts/{a}/tokens/6d7f2f5f5b1d4a0e9081fdc98d432fd1",
    ),
    // Another account than the demo's, which the other cases need.
    ("DELETE", "/accounts/6d7f2f5f5b1d4a0e9081fdc98d432fd1"),
];

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    store: Arc<dyn Store>,
    /// The demo's state, which every case starts from.
    seed: roster::store::export::Export,
    _dir: tempfile::TempDir,
}

/// One demo server, put back to the demo's state before every case, so that a failing
/// case replays alone (proptest keeps it in `fuzz.proptest-regressions`) exactly as it ran.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (app, store, seed) = runtime.block_on(async {
            let store: Arc<dyn Store> = Arc::new(
                SqliteStore::open(&dir.path().join("fuzz.db"), DEFAULT_CREDENTIAL_TTL)
                    .await
                    .unwrap(),
            );
            let demo = roster::fixture::parse(roster::fixture::DEMO).unwrap();
            let (seed, _) = roster::fixture::seeded_state(&[&demo]).await.unwrap();
            store
                .import(&seed, true, &Default::default())
                .await
                .unwrap();
            let limits = Limits {
                rate: None,
                failed_auth: None,
                ..Limits::default()
            };
            (roster::api::router(store.clone(), &limits), store, seed)
        });
        Fixture {
            runtime,
            app,
            store,
            seed,
            _dir: dir,
        }
    })
}

/// Sends one request as the demo user and checks the answer is a non-5xx envelope.
fn check(method: &str, uri: &str, body: Vec<u8>) -> Result<(), TestCaseError> {
    let f = fixture();
    let Ok(request) = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(uri)
        .header("X-Auth-Email", "user@example.com")
        .header("X-Auth-Key", "144c9defac04969c7bfad8efaa8ea194")
        .header("content-type", "application/json")
        .body(Body::from(body))
    else {
        // Not a URI an HTTP client could send.
        return Ok(());
    };
    let (status, bytes) = f.runtime.block_on(async {
        f.store.restore(&f.seed).await.unwrap();
        let response = f.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    });
    prop_assert!(status.as_u16() < 500, "{method} {uri}: {status}");
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| TestCaseError::fail(format!("{method} {uri}: not JSON ({e})")))?;
    prop_assert!(body["success"].is_boolean(), "{method} {uri}: {body}");
    Ok(())
}

fn route() -> impl Strategy<Value = (&'static str, String)> {
    proptest::sample::select(ROUTES).prop_map(|(method, path)| {
        (
            method,
            format!(
                "/client/v4{}",
                path.replace("{a}", ACCOUNT).replace("{m}", MEMBER)
            ),
        )
    })
}

/// Query strings made of the parameters the API reads, other names, and odd values.
fn query() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        proptest::sample::select(
            &[
                "page",
                "per_page",
                "order",
                "direction",
                "status",
                "name",
                "account.name",
                "id",
                "label",
                "scope",
                "include_expired",
            ][..]
        )
        .prop_map(str::to_string),
        "[a-z._%]{0,12}",
    ];
    let value = prop_oneof![
        "[0-9]{0,25}",
        "-?[0-9]{1,5}\\.[0-9]{0,3}",
        "(asc|desc|accepted|pending|rejected|user\\.email|status|id|true|false)",
        "\\PC{0,40}",
        "(%[0-9A-Fa-f]{2}|%|[a-z]){0,20}",
    ];
    proptest::collection::vec((name, value), 0..5).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

/// JSON values of any shape, with the API's field names more likely than not.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,30}".prop_map(Value::from),
        Just(Value::from(MEMBER)),
        Just(Value::from("accepted")),
        Just(Value::from("a@example.com")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let key = prop_oneof![
            proptest::sample::select(
                &[
                    "email",
                    "roles",
                    "policies",
                    "status",
                    "name",
                    "id",
                    "access",
                    "effect",
                    "permission_groups",
                    "resource_groups",
                    "resources",
                    "scope",
                    "key",
                    "objects",
                    "meta",
                    "settings",
                    "first_name",
                    "telephone",
                    "condition",
                    "request_ip",
                    "in",
                    "expires_on",
                    "not_before",
                ][..]
            )
            .prop_map(str::to_string),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(key, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_query_string_gets_an_envelope((method, path) in route(), query in query()) {
        check(method, &format!("{path}?{query}"), Vec::new())?;
    }

    #[test]
    fn any_json_body_gets_an_envelope((method, path) in route(), body in json_value()) {
        check(method, &path, body.to_string().into_bytes())?;
    }

    #[test]
    fn any_bytes_as_a_body_get_an_envelope((method, path) in route(), body in proptest::collection::vec(any::<u8>(), 0..200)) {
        check(method, &path, body)?;
    }

    #[test]
    fn any_path_segment_gets_an_envelope(segment in "[^/?#]{0,40}", (method, path) in route()) {
        let encoded: String = url::form_urlencoded::byte_serialize(segment.as_bytes()).collect();
        check(method, &format!("{path}/{encoded}"), Vec::new())?;
        check(method, &path.replace(MEMBER, &encoded).replace(ACCOUNT, &encoded), Vec::new())?;
    }
}
