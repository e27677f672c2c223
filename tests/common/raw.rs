//! One HTTP/1.1 request on a TCP connection of its own, with the demo user's key: what a
//! client sees, the head included (`Retry-After`), whatever the status.

use std::io::{Read, Write};
use std::time::Duration;

/// The demo account, whose members the tests invite.
pub const DEMO_ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";

/// A request with the demo user's key and a JSON body, answered as (status, head in lower
/// case, body); an error when there is no answer within `timeout`.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> std::io::Result<(u16, String, String)> {
    let demo = "X-Auth-Email: user@example.com\r\nX-Auth-Key: 144c9defac04969c7bfad8efaa8ea194";
    request_as(addr, demo, method, path, body, timeout)
}

/// [`request`] with other credentials: `auth`, one or more header lines.
pub fn request_as(
    addr: &str,
    auth: &str,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> std::io::Result<(u16, String, String)> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n\
         {body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no head in {answer:?}")))?;
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    Ok((status, head.to_ascii_lowercase(), body.to_owned()))
}

/// An invitation of `email` to the demo account, as an administrator.
pub fn invite(
    addr: &str,
    email: &str,
    timeout: Duration,
) -> std::io::Result<(u16, String, String)> {
    let body = format!(r#"{{"email": "{email}", "roles": ["87e7860bc4c445faba075646dac38cca"]}}"#);
    request(
        addr,
        "POST",
        &format!("/client/v4/accounts/{DEMO_ACCOUNT}/members"),
        &body,
        timeout,
    )
}

/// Every member's email in the demo account, page by page.
pub fn member_emails(addr: &str) -> Vec<String> {
    let mut emails = Vec::new();
    for page in 1.. {
        let (status, _, body) = request(
            addr,
            "GET",
            &format!("/client/v4/accounts/{DEMO_ACCOUNT}/members?per_page=50&page={page}"),
            "",
            Duration::from_secs(30),
        )
        .expect("an answer");
        assert_eq!(status, 200, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let members = body["result"].as_array().expect("a list");
        emails.extend(
            members
                .iter()
                .map(|m| m["email"].as_str().unwrap().to_string()),
        );
        if members.len() < 50 {
            return emails;
        }
    }
    unreachable!()
}

/// Asserts that `head` and `body` are a 503 in Cloudflare's envelope, with `Retry-After`.
pub fn assert_unavailable(head: &str, body: &str) {
    assert!(head.contains("\r\nretry-after: "), "{head}");
    let body: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["result"], serde_json::Value::Null, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Service unavailable: "), "{body}");
}
