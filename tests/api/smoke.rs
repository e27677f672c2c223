use crate::helpers::*;

#[tokio::test]
async fn demo_memberships_answer_like_the_documentation() {
    let server = TestServer::demo().await;
    let r = server.as_user(&Creds::demo()).get("/memberships").await;
    let result = r.result();
    let demo = result
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == DEMO_MEMBERSHIP)
        .expect("demo membership listed");
    assert_eq!(demo["account"]["id"], DEMO_ACCOUNT);
    assert_eq!(demo["account"]["name"], "Demo Account");
    assert_eq!(demo["roles"], serde_json::json!(["Account Administrator"]));
    assert_eq!(demo["status"], "accepted");
}

/// On PostgreSQL each test's server has a schema of its own, and takes it away when it
/// goes: a run leaves nothing behind, and cleans up nothing it did not make.
#[tokio::test]
#[ignore = "PostgreSQL only (on SQLite a test's file goes with its temporary directory): .ci/run's PostgreSQL pass runs it with ROSTER_TEST_DATABASE_URL and --include-ignored"]
async fn a_test_server_leaves_no_schema_behind() {
    let server = TestServer::start().await;
    let schema = server
        .schema
        .as_ref()
        .expect("ROSTER_TEST_DATABASE_URL names a PostgreSQL database");
    let (url, name) = (schema.url.clone(), schema.name.clone());
    let exists = || {
        let (url, name) = (url.clone(), name.clone());
        async move {
            let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
            let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            )
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .unwrap()
        }
    };
    assert!(exists().await);
    drop(server);
    assert!(!exists().await, "{name} is left behind");
}

/// `GET /_roster/health` needs no credentials, lives outside `/client/v4`, and says the
/// database answers.
#[tokio::test]
async fn health_answers_without_credentials() {
    let server = TestServer::start().await;
    let r = reqwest::get(format!("http://{}/_roster/health", server.addr))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["result"]["database"], "reachable");
    let nested = reqwest::get(format!("http://{}/client/v4/_roster/health", server.addr))
        .await
        .unwrap();
    assert_eq!(nested.status().as_u16(), 404);
}
