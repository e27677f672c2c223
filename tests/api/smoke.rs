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
