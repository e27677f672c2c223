//! Validates responses against the official OpenAPI subset (`tests/openapi/`, a copy of
//! `shared/api/`). The 2024 schema is turned into JSON Schema 2020-12 (`nullable`
//! becomes a `null` type, `oneOf` between overlapping envelopes becomes `anyOf`), and the
//! few places where today's official SDKs disagree with it are patched to the SDK shape;
//! README.md lists each one. Everything else must match the schema as published.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::OnceLock;

use jsonschema::Validator;
use regex::Regex;
use reqwest::Method;
use serde_json::{Value, json};

use crate::openapi;

struct Operation {
    method: String,
    pattern: Regex,
    template: String,
    ok: Option<Validator>,
}

fn convert(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(one_of) = map.remove("oneOf") {
                map.insert("anyOf".into(), one_of);
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), json!([t, "null"]));
                }
                if let Some(Value::Array(e)) = map.get_mut("enum")
                    && !e.contains(&Value::Null)
                {
                    e.push(Value::Null);
                }
            }
            map.values_mut().for_each(convert);
        }
        Value::Array(items) => items.iter_mut().for_each(convert),
        _ => {}
    }
}

fn validator(schema: &Value, components: &Value) -> Validator {
    let root = json!({"allOf": [schema], "components": components});
    jsonschema::draft202012::new(&root).expect("schema compiles")
}

fn operations() -> &'static Vec<Operation> {
    static OPS: OnceLock<Vec<Operation>> = OnceLock::new();
    OPS.get_or_init(|| {
        let mut doc = openapi::patched();
        convert(&mut doc);
        let components = json!({"schemas": doc["components"]["schemas"].clone()});
        let mut ops = Vec::new();
        let placeholder = Regex::new(r"\{[^}]+\}").unwrap();
        for (template, methods) in doc["paths"].as_object().expect("paths") {
            let pattern = format!("^{}$", placeholder.replace_all(template, "[^/]+"));
            for (method, op) in methods.as_object().expect("methods") {
                let responses = op.get("responses");
                let schema_of = |code: &str| {
                    responses
                        .and_then(|r| r.get(code))
                        .and_then(|r| r.pointer("/content/application~1json/schema"))
                        .map(|s| validator(s, &components))
                };
                ops.push(Operation {
                    method: method.to_uppercase(),
                    pattern: Regex::new(&pattern).unwrap(),
                    template: template.clone(),
                    ok: schema_of("200"),
                });
            }
        }
        ops
    })
}

fn component(name: &'static str) -> Validator {
    let mut doc = openapi::patched();
    convert(&mut doc);
    let components = json!({"schemas": doc["components"]["schemas"].clone()});
    validator(
        &json!({"$ref": format!("#/components/schemas/{name}")}),
        &components,
    )
}

/// Each operation's `4XX` schema is `allOf` its success envelope (`success: true`, a
/// non-null result) and the common failure envelope, which no body can satisfy; failures
/// are held to the failure half.
fn failure() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| component("iam_api-response-common-failure"))
}

/// For an operation whose contract gives no success schema: the envelope at least, never
/// nothing.
fn envelope() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| {
        jsonschema::draft202012::new(&json!({
            "type": "object",
            "required": ["success", "errors", "messages", "result"],
            "properties": {
                "success": {"const": true},
                "errors": {"type": "array", "maxItems": 0},
                "messages": {"type": "array"},
            },
        }))
        .expect("schema compiles")
    })
}

/// For Roster's few operations outside the subset (`POST /accounts`).
fn success() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| component("iam_api-response-single"))
}

/// Panics with every violation if `body` does not match the contract for this request.
pub fn check(method: &Method, path: &str, status: u16, body: &Value) {
    let path = path.split('?').next().unwrap_or_default();
    let op = operations()
        .iter()
        .find(|op| op.method == method.as_str() && op.pattern.is_match(path));
    let validator = match (op, status) {
        (Some(op), 200) => op.ok.as_ref().unwrap_or_else(|| envelope()),
        (None, 200) => success(),
        _ => failure(),
    };
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    let name = op.map_or("(no route)", |o| o.template.as_str());
    if let Some(op) = op {
        SEEN.with(|seen| {
            seen.borrow_mut()
                .insert((op.method.clone(), op.template.clone(), status == 200))
        });
    }
    assert!(
        errors.is_empty(),
        "{method} {path} ({name}, {status}) does not match the OpenAPI schema:\n{}\nbody: {body}",
        errors.join("\n")
    );
}

thread_local! {
    /// (method, template, succeeded) of every checked response on this test's thread.
    static SEEN: RefCell<BTreeSet<(String, String, bool)>> = const { RefCell::new(BTreeSet::new()) };
}

/// What this thread's test has exercised so far.
pub fn seen() -> BTreeSet<(String, String, bool)> {
    SEEN.with(|seen| seen.borrow().clone())
}

/// Every operation in the contract as (method, template).
pub fn operations_in_contract() -> BTreeSet<(String, String)> {
    operations()
        .iter()
        .map(|op| (op.method.clone(), op.template.clone()))
        .collect()
}
