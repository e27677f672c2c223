//! The web console over HTTP, as a browser sends it (forms, cookies, no JavaScript): the
//! session's cookie, the CSRF token every form carries, the throttle on failed sign-ins,
//! a session ending with its credential, and markup shown as text. The pages in a real
//! browser are tested by `tests/console/` (Playwright).

use std::num::NonZeroU32;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{StatusCode, redirect};
use roster::api::Limits;

use crate::helpers::{Creds, DEMO_ACCOUNT, SUPER_ADMIN, TestServer};

/// A browser without JavaScript: it keeps the session cookie and follows nothing itself.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of the first form's hidden CSRF field.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("the page has a form with its token");
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        Browser {
            base: format!("http://{}", server.addr),
            http: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for set in headers.get_all(SET_COOKIE).iter() {
            let set = set.to_str().unwrap();
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn answer(&mut self, request: reqwest::RequestBuilder) -> Page {
        let response = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        self.keep(&headers);
        let body = response.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.answer(request).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)], extra: &[(&str, &str)]) -> Page {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            form.append_pair(name, value);
        }
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish());
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        self.answer(request).await
    }

    async fn sign_in(&mut self, fields: &[(&str, &str)]) -> Page {
        let form = self.get("/console/sign-in").await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post("/console/sign-in", &all, &[]).await
    }

    async fn sign_in_as(&mut self, creds: &Creds) -> Page {
        self.sign_in(&[("email", &creds.email), ("api_key", &creds.key)])
            .await
    }
}

/// Form fields or headers, by name.
type Pairs<'a> = Vec<(&'a str, &'a str)>;

fn members_page() -> String {
    format!("/console/accounts/{DEMO_ACCOUNT}/members")
}

#[tokio::test]
async fn signing_in_gives_a_strict_http_only_session_that_every_page_needs() {
    let server = TestServer::demo().await;
    let mut browser = Browser::new(&server);
    let root = browser.get("/").await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.location(), "/console/");
    for page in ["/console/", &members_page(), "/console/invitations"] {
        let refused = browser.get(page).await;
        assert_eq!(refused.status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(refused.location(), "/console/sign-in", "{page}");
    }

    let signed_in = browser.sign_in_as(&Creds::demo()).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location(), "/console/");
    let cookie = signed_in
        .set_cookie("roster_session")
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let id = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(id.len() >= 64, "an unguessable id: {cookie}");

    let accounts = browser.get("/console/").await;
    assert_eq!(accounts.status, StatusCode::OK);
    assert!(accounts.body.contains("Demo Account"), "{}", accounts.body);
    let policy = accounts.headers["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(accounts.body.contains("Signed in as user@example.com"));

    // The database keeps the id's digest, never the id.
    let digest = roster::auth::hash_secret(id);
    assert!(server.store.session(&digest).await.unwrap().is_some());
    assert!(server.store.session(id).await.unwrap().is_none());

    // Signing out ends the session: the same cookie reaches no page.
    let csrf = accounts.csrf();
    let out = browser
        .post("/console/sign-out", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    browser
        .cookies
        .push(("roster_session".to_string(), id.to_string()));
    let after = browser.get("/console/").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(server.store.session(&digest).await.unwrap().is_none());
}

#[tokio::test]
async fn behind_tls_the_session_cookie_is_secure() {
    let server = TestServer::demo().await;
    let mut browser = Browser::new(&server);
    let form = browser.get("/console/sign-in").await;
    let creds = Creds::demo();
    let signed_in = browser
        .post(
            "/console/sign-in",
            &[
                ("csrf", &form.csrf()),
                ("email", &creds.email),
                ("api_key", &creds.key),
            ],
            &[("x-forwarded-proto", "https")],
        )
        .await;
    let cookie = signed_in.set_cookie("roster_session").expect("a session");
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn a_post_without_its_forms_token_changes_nothing() {
    let server = TestServer::demo().await;
    let mut browser = Browser::new(&server);
    browser.sign_in_as(&Creds::demo()).await;
    let page = browser.get(&members_page()).await;
    let csrf = page.csrf();
    let mut other = Browser::new(&server);
    other.sign_in_as(&Creds::demo()).await;
    let others = other.get(&members_page()).await.csrf();
    assert_ne!(others, csrf);
    let wrong = "0".repeat(64);
    let invite = format!("{}/invite", members_page());
    let role = crate::helpers::DNS_ROLE;
    let cases: [(&str, Pairs, Pairs); 4] = [
        ("no token", vec![], vec![]),
        ("a wrong token", vec![("csrf", &wrong)], vec![]),
        ("another session's token", vec![("csrf", &others)], vec![]),
        (
            "another site's post",
            vec![("csrf", csrf.as_str())],
            vec![("origin", "https://evil.example")],
        ),
    ];
    for (case, fields, extra) in cases {
        let mut all = fields;
        all.push(("emails", "forged@example.com"));
        all.push(("roles", role));
        let refused = browser.post(&invite, &all, &extra).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{case}");
    }
    // The sign-in form is held to its own token too.
    let mut stranger = Browser::new(&server);
    let creds = Creds::demo();
    let refused = stranger
        .post(
            "/console/sign-in",
            &[("email", &creds.email), ("api_key", &creds.key)],
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.set_cookie("roster_session").is_none());

    let api = server.as_user(&creds);
    let members = api
        .get(&format!("/accounts/{DEMO_ACCOUNT}/members?per_page=50"))
        .await;
    let emails: Vec<&str> = members
        .result()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert!(!emails.contains(&"forged@example.com"), "{emails:?}");

    // With its token, the same form invites: as the signed-in user, in the audit log.
    let sent = browser
        .post(
            &invite,
            &[
                ("csrf", &csrf),
                (
                    "emails",
                    "first@example.com,\nsecond@example.com, not-an-email",
                ),
                ("roles", role),
            ],
            &[],
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK);
    assert!(
        sent.body
            .contains("first@example.com</strong>: Invitation sent")
    );
    assert!(
        sent.body
            .contains("second@example.com</strong>: Invitation sent")
    );
    assert!(
        sent.body.contains("not-an-email</strong>: "),
        "{}",
        sent.body
    );
    assert!(sent.body.contains("(1002)"), "{}", sent.body);
    let log = api
        .get(&format!(
            "/accounts/{DEMO_ACCOUNT}/logs/audit?since=2000-01-01&before=2100-01-01&action_type=create&resource_type=account.member&limit=5"
        ))
        .await;
    let newest = &log.result()[0];
    assert_eq!(newest["actor"]["email"], "user@example.com");
    assert_eq!(newest["actor"]["context"], "api_key");
    assert_eq!(newest["raw"]["method"], "POST");
    assert_eq!(
        newest["raw"]["uri"],
        format!("/client/v4/accounts/{DEMO_ACCOUNT}/members")
    );
}

#[tokio::test]
async fn the_console_grants_no_more_than_the_api() {
    // The demo user is an Account Administrator, not a Super Administrator: the API
    // refuses them the role, and so does the console, with the API's own answer.
    let server = TestServer::demo().await;
    let mut browser = Browser::new(&server);
    browser.sign_in_as(&Creds::demo()).await;
    let csrf = browser.get(&members_page()).await.csrf();
    let refused = browser
        .post(
            &format!("{}/invite", members_page()),
            &[
                ("csrf", &csrf),
                ("emails", "boss@example.com"),
                ("roles", SUPER_ADMIN),
            ],
            &[],
        )
        .await;
    assert!(refused.body.contains("(9109)"), "{}", refused.body);
    let listed = server
        .as_user(&Creds::demo())
        .get(&format!("/accounts/{DEMO_ACCOUNT}/members?per_page=50"))
        .await;
    assert!(!listed.body.to_string().contains("boss@example.com"));
}

#[tokio::test]
async fn failed_sign_ins_count_against_the_failed_authentication_limit() {
    let limits = Limits {
        failed_auth: NonZeroU32::new(3),
        ..Limits::default()
    };
    let server = TestServer::start_with(&limits).await;
    server.user("someone@example.com").await;
    let mut browser = Browser::new(&server);
    let wrong = "0".repeat(37);
    let mut statuses = Vec::new();
    // Each guess at another email: the address's allowance is what runs out.
    for n in 0..4 {
        let email = format!("guess{n}@example.com");
        let page = browser
            .sign_in(&[("email", &email), ("api_key", &wrong)])
            .await;
        assert!(page.set_cookie("roster_session").is_none());
        statuses.push(page.status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // The API answers the same address as the console did: it is one allowance.
    let api = server
        .with_headers(&[
            ("X-Auth-Email", "someone@example.com"),
            ("X-Auth-Key", &wrong),
        ])
        .get("/user")
        .await;
    api.expect_error(429, 971);
}

#[tokio::test]
async fn a_session_ends_with_the_token_it_was_opened_with() {
    let server = TestServer::demo().await;
    let token = server
        .token(
            &Creds::demo(),
            &["Account Settings Read", "Memberships Read"],
        )
        .await;
    let mut browser = Browser::new(&server);
    let signed_in = browser.sign_in(&[("api_token", &token)]).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let members = browser.get(&members_page()).await;
    assert_eq!(members.status, StatusCode::OK);
    // The token reads but cannot write: the console's form is refused by the API.
    let refused = browser
        .post(
            &format!("{}/invite", members_page()),
            &[("csrf", &members.csrf()), ("emails", "x@example.com")],
            &[],
        )
        .await;
    assert!(
        refused.body.contains("x@example.com</strong>: "),
        "{}",
        refused.body
    );
    assert!(!refused.body.contains("Invitation sent"));

    let api = server.as_user(&Creds::demo());
    let tokens = api.get("/user/tokens").await;
    // The session's token, beside the demo user's own ("readonly token", docs/api.md).
    let listed = tokens.result().as_array().unwrap();
    assert_eq!(listed.len(), 2, "{}", tokens.body);
    let id = listed
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .find(|id| id != "ed17574386854bf78a67040be0a770b0")
        .unwrap();
    api.delete(&format!("/user/tokens/{id}")).await;
    let after = browser.get(&members_page()).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location(), "/console/sign-in");
}

#[tokio::test]
async fn names_that_look_like_markup_are_shown_as_text() {
    let server = TestServer::demo().await;
    let creds = Creds::demo();
    let hostile = "<img src=x onerror=alert(1)>";
    server.account(&creds, hostile).await;
    let mut browser = Browser::new(&server);
    browser.sign_in_as(&creds).await;
    let accounts = browser.get("/console/").await;
    assert!(!accounts.body.contains(hostile), "{}", accounts.body);
    assert!(
        accounts
            .body
            .contains("&#60;img src=x onerror=alert(1)&#62;"),
        "{}",
        accounts.body
    );
}

#[tokio::test]
async fn a_session_is_known_to_every_server_on_the_database() {
    // Two routers over one database, as two processes share one: a session opened on one
    // serves pages on the other.
    let server = TestServer::demo().await;
    let mut browser = Browser::new(&server);
    browser.sign_in_as(&Creds::demo()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = listener.local_addr().unwrap();
    let app = roster::api::router(server.store.clone(), &Limits::default());
    tokio::spawn(roster::server::serve(
        listener,
        app,
        roster::server::Connections::default(),
        std::future::pending(),
    ));
    browser.base = format!("http://{other}");
    let page = browser.get(&members_page()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ana@example.com"));
}

#[tokio::test]
async fn without_the_console_the_root_is_no_route() {
    let limits = Limits {
        console: false,
        ..Limits::default()
    };
    let server = TestServer::start_with(&limits).await;
    let mut browser = Browser::new(&server);
    assert_eq!(browser.get("/").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        browser.get("/console/sign-in").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_second_session_cookie_signs_nobody_in() {
    // Another service on the host (cookies ignore ports) can set a cookie of the same name:
    // with two, the console trusts neither.
    let server = TestServer::demo().await;
    let mut browser = Browser::new(&server);
    browser.sign_in_as(&Creds::demo()).await;
    let mut stranger = Browser::new(&server);
    stranger.sign_in_as(&Creds::demo()).await;
    let theirs = stranger.cookies[0].1.clone();
    browser.cookies.push(("roster_session".into(), theirs));
    let page = browser.get("/console/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/console/sign-in");
}

#[tokio::test]
async fn another_sites_page_cannot_load_the_console_or_post_to_it() {
    let server = TestServer::demo().await;
    let mut browser = Browser::new(&server);
    browser.sign_in_as(&Creds::demo()).await;
    // An image or a frame on another site's page (another port is the same site).
    for dest in ["image", "iframe", "script"] {
        let request = browser
            .http
            .get(format!(
                "{}/console/accounts/{DEMO_ACCOUNT}/members.csv",
                browser.base
            ))
            .header("sec-fetch-site", "same-site")
            .header("sec-fetch-dest", dest);
        assert_eq!(
            browser.answer(request).await.status,
            StatusCode::FORBIDDEN,
            "{dest}"
        );
    }
    // A person following a link from elsewhere still gets the page.
    let request = browser
        .http
        .get(format!("{}/console/", browser.base))
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-dest", "document");
    assert_eq!(browser.answer(request).await.status, StatusCode::OK);
    // The sign-in form refuses a post another origin made, even with its token and cookie.
    let form = browser.get("/console/sign-in").await;
    let creds = Creds::demo();
    let refused = browser
        .post(
            "/console/sign-in",
            &[
                ("csrf", &form.csrf()),
                ("email", &creds.email),
                ("api_key", &creds.key),
            ],
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.set_cookie("roster_session").is_none());
    // Behind a proxy that rewrites Host, the host the browser asked for is what counts.
    let form = browser.get("/console/sign-in").await;
    let proxied = browser
        .post(
            "/console/sign-in",
            &[
                ("csrf", &form.csrf()),
                ("email", &creds.email),
                ("api_key", &creds.key),
            ],
            &[
                ("origin", "https://roster.example"),
                ("x-forwarded-host", "roster.example"),
            ],
        )
        .await;
    assert_eq!(proxied.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn every_page_carries_its_protective_headers() {
    let server = TestServer::demo().await;
    let mut browser = Browser::new(&server);
    browser.sign_in_as(&Creds::demo()).await;
    for path in ["/console/sign-in", "/console/", &members_page()] {
        let page = browser.get(path).await;
        let header = |name: &str| page.headers[name].to_str().unwrap().to_string();
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        assert_eq!(header("cache-control"), "no-store", "{path}");
        assert!(header("content-security-policy").contains("script-src 'self'"));
    }
}

#[tokio::test]
async fn the_emulator_journals_no_console_page_nor_what_a_sign_in_sends() {
    let server = TestServer::emulator().await;
    let mut browser = Browser::new(&server);
    browser.sign_in_as(&Creds::demo()).await;
    browser.get(&members_page()).await;
    let journal = server.raw(&[]).get("/_roster/requests").await;
    let text = journal.body.to_string();
    assert!(!text.contains("/console"), "{text}");
    assert!(!text.contains(&Creds::demo().key), "{text}");
}

#[tokio::test]
async fn a_session_unused_for_an_hour_ends() {
    let server = TestServer::demo().await;
    let mut browser = Browser::new(&server);
    browser.sign_in_as(&Creds::demo()).await;
    assert_eq!(browser.get("/console/").await.status, StatusCode::OK);
    let mut db = server.database().await;
    let idle = "UPDATE console_sessions SET seen_on = '2000-01-01T00:00:00Z'";
    db.execute(idle, idle).await;
    let page = browser.get("/console/").await;
    assert_eq!(page.location(), "/console/sign-in");
    // And twelve hours after it began, used or not.
    browser.sign_in_as(&Creds::demo()).await;
    let old = "UPDATE console_sessions SET created_on = '2000-01-01T00:00:00Z'";
    db.execute(old, old).await;
    let page = browser.get("/console/").await;
    assert_eq!(page.location(), "/console/sign-in");
}

#[tokio::test]
async fn a_credential_keeps_a_bounded_number_of_sessions() {
    let server = TestServer::demo().await;
    let mut first = Browser::new(&server);
    first.sign_in_as(&Creds::demo()).await;
    for _ in 0..roster::store::SESSIONS_PER_CREDENTIAL {
        Browser::new(&server).sign_in_as(&Creds::demo()).await;
    }
    // The oldest went when the limit was passed; the newest are kept.
    assert_eq!(first.get("/console/").await.location(), "/console/sign-in");
}
