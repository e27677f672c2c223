//! What the tests read out of a Cloudflare envelope. Shared by the API tests and the tests
//! that run the `roster` binary.

use serde_json::Value;

/// The `name` of every item of a list response's `result`, in the order given.
pub fn result_names(body: &Value) -> Vec<String> {
    body["result"]
        .as_array()
        .unwrap_or_else(|| panic!("a list in result: {body}"))
        .iter()
        .map(|item| item["name"].as_str().unwrap().to_string())
        .collect()
}
