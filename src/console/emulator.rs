//! The emulator in the console (only with `--emulator`): reset, snapshots, the clock,
//! faults and the request journal, each form a call to the control plane under
//! `/_roster/` as a test suite makes it. The journal refreshes itself every two seconds
//! with JavaScript (htmx swaps its table in place) and on reload without; each request
//! can be copied as a curl command (its secrets stay masked, as the journal keeps them).

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value, json};

use super::client::Api;
use super::pages::{no_page, problem, text};
use super::session::{Chrome, Posted, Visitor};
use super::{ConsoleState, html};

/// The most recent requests the journal's table shows.
const JOURNAL_SHOWN: usize = 100;

struct SnapshotRow {
    name: String,
    taken_on: String,
}

struct FaultRow {
    id: String,
    summary: String,
}

struct RequestRow {
    at: String,
    method: String,
    target: String,
    status: String,
    caller: String,
    curl: String,
    index: usize,
}

/// The journal's filters, as the page and the control plane name them.
struct Filters {
    method: String,
    path: String,
    status: String,
}

impl Filters {
    fn of(query: &Option<String>) -> Filters {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        Filters {
            method: get("method"),
            path: get("path"),
            status: get("status"),
        }
    }

    fn query(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("method", &self.method),
            ("path", &self.path),
            ("status", &self.status),
        ] {
            if !value.is_empty() {
                out.append_pair(name, value);
            }
        }
        out.finish()
    }
}

#[derive(Template)]
#[template(path = "console/emulator.html")]
struct EmulatorPage {
    chrome: Chrome,
    now: String,
    offset_seconds: i64,
    snapshots: Vec<SnapshotRow>,
    faults: Vec<FaultRow>,
    journal: Journal,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "console/journal.html")]
struct Journal {
    requests: Vec<RequestRow>,
    filters: Filters,
    query: String,
}

/// A shell word: single-quoted, with its own quotes closed and escaped.
fn shell_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `entry` as a curl command against `origin`. The journal masks secrets, so the command
/// names them as placeholders to fill in.
fn curl_of(entry: &Value, origin: &str) -> String {
    let mut target = format!("{origin}{}", text(&entry["path"]));
    if let Some(query) = entry["query"].as_str().filter(|q| !q.is_empty()) {
        target.push('?');
        target.push_str(query);
    }
    // Every word from the request is quoted: a method, like a path or a header, is the
    // client's to choose, and the command is meant to be pasted into a shell.
    let mut words = vec![
        "curl".to_string(),
        "-X".into(),
        shell_word(&text(&entry["method"])),
        shell_word(&target),
    ];
    // What curl sets itself, and the ray id the server put on the request.
    let skipped = [
        "host",
        "content-length",
        "connection",
        "accept-encoding",
        "cf-ray",
    ];
    if let Some(headers) = entry["headers"].as_object() {
        for (name, value) in headers {
            if skipped.contains(&name.as_str()) {
                continue;
            }
            words.push("-H".into());
            match value.as_str() {
                // Double-quoted, so the shell fills the secret in from the environment.
                Some("[masked]") => words.push(format!(
                    "\"{name}: ${}\"",
                    name.to_uppercase().replace('-', "_")
                )),
                Some(v) => words.push(shell_word(&format!("{name}: {v}"))),
                None => {
                    words.pop();
                }
            }
        }
    }
    match &entry["body"] {
        Value::Null => {}
        Value::String(body) => {
            words.push("--data".into());
            words.push(shell_word(body));
        }
        body => {
            words.push("--data".into());
            words.push(shell_word(&body.to_string()));
        }
    }
    words.join(" ")
}

fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    format!("http://{host}")
}

async fn journal(api: &Api, filters: Filters, origin: &str) -> Journal {
    let query = filters.query();
    let shown = if query.is_empty() {
        String::new()
    } else {
        format!("{query}&")
    };
    let entries = api
        .get(&format!("/_roster/requests?{shown}limit={JOURNAL_SHOWN}"))
        .await
        .map(|found| found.result.as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    // Newest first, as a person reads a log of what just happened.
    let requests = entries
        .iter()
        .rev()
        .enumerate()
        .map(|(index, e)| RequestRow {
            at: text(&e["at"]),
            method: text(&e["method"]),
            target: match e["query"].as_str().filter(|q| !q.is_empty()) {
                Some(q) => format!("{}?{q}", text(&e["path"])),
                None => text(&e["path"]),
            },
            status: e["status"].to_string(),
            caller: text(&e["caller"]),
            curl: curl_of(e, origin),
            index,
        })
        .collect();
    Journal {
        requests,
        filters,
        query,
    }
}

/// `GET /_roster/clock`, `/_roster/snapshots`, `/_roster/faults` and `/_roster/requests`.
pub async fn emulator(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    visitor: Visitor,
) -> Response {
    if !state.emulator {
        return no_page();
    }
    emulator_page(visitor, &headers, Filters::of(&query), None).await
}

async fn emulator_page(
    visitor: Visitor,
    headers: &HeaderMap,
    filters: Filters,
    notice: Option<String>,
) -> Response {
    let Visitor { api, chrome } = visitor;
    let clock = match api.get("/_roster/clock").await {
        Ok(clock) => clock.result,
        Err(refused) => return problem(chrome, "Emulator", &refused),
    };
    let list = |found: Result<super::client::Envelope, _>| {
        found
            .ok()
            .and_then(|f: super::client::Envelope| f.result.as_array().cloned())
            .unwrap_or_default()
    };
    let snapshots = list(api.get("/_roster/snapshots").await)
        .iter()
        .map(|s| SnapshotRow {
            name: text(&s["name"]),
            taken_on: text(&s["taken_on"]),
        })
        .collect();
    let faults = list(api.get("/_roster/faults").await)
        .iter()
        .map(|f| {
            let mut parts = Vec::new();
            for field in [
                "method", "path", "caller", "status", "code", "message", "delay_ms", "times",
                "hits",
            ] {
                if let Some(v) = f.get(field).filter(|v| !v.is_null()) {
                    let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    parts.push(format!("{field} {shown}"));
                }
            }
            FaultRow {
                id: text(&f["id"]),
                summary: parts.join(", "),
            }
        })
        .collect();
    let journal = journal(&api, filters, &origin(headers)).await;
    html(EmulatorPage {
        chrome,
        now: text(&clock["now"]),
        offset_seconds: clock["offset_seconds"].as_i64().unwrap_or(0),
        snapshots,
        faults,
        journal,
        notice,
    })
}

/// The journal's table alone, for htmx to swap in place.
pub async fn journal_part(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    visitor: Visitor,
) -> Response {
    if !state.emulator {
        return no_page();
    }
    html(journal(&visitor.api, Filters::of(&query), &origin(&headers)).await)
}

/// One of the emulator's forms, by `action`, each one control-plane call.
pub async fn act(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    posted: Posted,
) -> Response {
    if !state.emulator {
        return no_page();
    }
    let Posted {
        visitor, fields, ..
    } = posted;
    let name = fields.one("name").unwrap_or_default().to_string();
    let (method, target, body): (Method, String, Option<Value>) = match fields.one("action") {
        Some("reset") => (Method::POST, "/_roster/reset".into(), None),
        Some("snapshot") => (
            Method::POST,
            "/_roster/snapshots".into(),
            Some(json!({ "name": name })),
        ),
        Some("restore") => (
            Method::POST,
            format!("/_roster/snapshots/{}/restore", encode_segment(&name)),
            None,
        ),
        Some("drop") => (
            Method::DELETE,
            format!("/_roster/snapshots/{}", encode_segment(&name)),
            None,
        ),
        Some("advance") => {
            let amount: i64 = fields
                .one("amount")
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            let unit = match fields.one("unit") {
                Some("minutes") => 60,
                Some("hours") => 3600,
                Some("days") => 86_400,
                _ => 1,
            };
            (
                Method::POST,
                "/_roster/clock".into(),
                Some(json!({ "advance_seconds": amount.saturating_mul(unit) })),
            )
        }
        Some("set") => (
            Method::POST,
            "/_roster/clock".into(),
            Some(json!({ "now": fields.one("now").unwrap_or_default() })),
        ),
        Some("real_time") => (
            Method::POST,
            "/_roster/clock".into(),
            Some(json!({ "reset": true })),
        ),
        Some("add_fault") => {
            let mut spec = Map::new();
            for field in ["method", "path", "caller", "message"] {
                if let Some(v) = fields.one(field) {
                    spec.insert(field.into(), json!(v));
                }
            }
            for field in ["status", "code", "times", "delay_ms", "retry_after"] {
                if let Some(v) = fields.one(field) {
                    // A number the control plane checks; text it refuses by name.
                    let n: Value = v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n));
                    spec.insert(field.into(), n);
                }
            }
            (
                Method::POST,
                "/_roster/faults".into(),
                Some(Value::Object(spec)),
            )
        }
        Some("remove_fault") => (
            Method::DELETE,
            format!(
                "/_roster/faults/{}",
                encode_segment(fields.one("id").unwrap_or_default())
            ),
            None,
        ),
        Some("clear_faults") => (Method::DELETE, "/_roster/faults".into(), None),
        Some("clear_requests") => (Method::DELETE, "/_roster/requests".into(), None),
        _ => return no_page(),
    };
    let action = fields.one("action").unwrap_or_default();
    let notice = match visitor.api.call(method, &target, body.as_ref()).await {
        Ok(_) if action == "reset" => {
            // The data is back to its seed; the page shows it as the next load reads it.
            return Redirect::to("/console/emulator").into_response();
        }
        Ok(_) => match action {
            "snapshot" => format!("Snapshot {name} taken."),
            "restore" => format!("Snapshot {name} restored."),
            "drop" => format!("Snapshot {name} deleted."),
            "advance" | "set" | "real_time" => "Clock moved.".to_string(),
            "add_fault" => "Fault added.".to_string(),
            "remove_fault" => "Fault removed.".to_string(),
            "clear_faults" => "Faults cleared.".to_string(),
            _ => "Journal cleared.".to_string(),
        },
        Err(refused) => format!("Refused: {}", refused.text()),
    };
    emulator_page(visitor, &headers, Filters::of(&None), Some(notice)).await
}

fn encode_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_cannot_break_out_of_the_copied_command() {
        let entry = json!({"method": "X`id`$(id)'|sh", "path": "/p", "headers": {}});
        assert_eq!(
            curl_of(&entry, "http://h"),
            "curl -X 'X`id`$(id)'\\''|sh' 'http://h/p'"
        );
    }

    #[test]
    fn a_request_is_copied_as_curl_with_its_secrets_to_fill_in() {
        let entry = json!({
            "method": "POST",
            "path": "/client/v4/accounts/a/members",
            "query": "x=1",
            "headers": {"host": "h", "x-auth-key": "[masked]", "x-auth-email": "o'neil@example.com"},
            "body": {"email": "a@example.com"},
        });
        assert_eq!(
            curl_of(&entry, "http://127.0.0.1:8080"),
            "curl -X 'POST' 'http://127.0.0.1:8080/client/v4/accounts/a/members?x=1' \
             -H 'x-auth-email: o'\\''neil@example.com' -H \"x-auth-key: $X_AUTH_KEY\" \
             --data '{\"email\":\"a@example.com\"}'"
        );
    }
}
