#![allow(dead_code)]

//! The contract the tests hold Roster to: the official OpenAPI subset (`tests/openapi/`, a
//! copy of `shared/api/`), patched in the few places where today's official SDKs disagree
//! with it (README.md lists each one). Shared by the API tests' response validation and by
//! the schemathesis run.

use serde_json::{Value, json};

const OPENAPI: &str = include_str!("../openapi/cloudflare-memberships-openapi.json");

/// The contract with the SDK-over-schema patches.
pub fn patched() -> Value {
    let mut doc: Value = serde_json::from_str(OPENAPI).expect("openapi parses");
    patch(&mut doc);
    doc
}

/// The patched contract as an OpenAPI document for schemathesis. Also: each operation's
/// `4XX` schema, which is `allOf` its success envelope (`success: true`) and the failure
/// envelope and so matches no body at all, is the failure envelope alone; `oneOf` between
/// overlapping envelopes (`GET /memberships`) is `anyOf`; every operation takes either
/// auth style (the schema names one or the other per operation, inconsistently); and
/// `PUT .../resource_groups/{id}` may leave out `scope`, as the SDKs allow.
pub fn for_fuzzing() -> Value {
    let mut doc = patched();
    let failure = json!({"$ref": "#/components/schemas/iam_api-response-common-failure"});
    let either = json!([{"api_email": [], "api_key": []}, {"api_token": []}]);
    for methods in doc["paths"].as_object_mut().expect("paths").values_mut() {
        for op in methods.as_object_mut().expect("methods").values_mut() {
            if let Some(schema) = op.pointer_mut("/responses/4XX/content/application~1json/schema")
            {
                *schema = failure.clone();
            }
            op["security"] = either.clone();
        }
    }
    let rg = "/accounts/{account_id}/iam/resource_groups/{resource_group_id}";
    let optional_scope = json!({
        "type": "object",
        "properties": doc["components"]["schemas"]["iam_create_resource_group"]["properties"].clone(),
    });
    doc["paths"][rg]["put"]["requestBody"]["content"]["application/json"]["schema"] =
        optional_scope;
    one_of_to_any_of(&mut doc);
    doc
}

fn one_of_to_any_of(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(one_of) = map.remove("oneOf") {
                map.insert("anyOf".into(), one_of);
            }
            map.values_mut().for_each(one_of_to_any_of);
        }
        Value::Array(items) => items.iter_mut().for_each(one_of_to_any_of),
        _ => {}
    }
}

/// The SDK-over-schema decisions, one line each (mirrored in README.md).
fn patch(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    // Roles carry the twelve-key permission map (SDK `Role.permissions`), not strings.
    schemas["iam_schemas-permissions"] = json!({"$ref": "#/components/schemas/iam_permissions"});
    // A member's status can be `rejected` (the members list filters on it).
    for s in ["iam_member", "iam_member_with_policies"] {
        schemas[s]["properties"]["status"]["enum"] = json!(["accepted", "pending", "rejected"]);
    }
    // Cloudflare's own rate-limit code, 971, is below the schema's minimum for codes.
    schemas["iam_messages"]["items"]["properties"]["code"]["minimum"] = json!(971);
    // A resource group's scope is one object (SDK `ResourceGroup*Response.scope`).
    schemas["iam_resource_group"]["properties"]["scope"] =
        json!({"$ref": "#/components/schemas/iam_scope"});
    // Single permission and resource groups come in the v4 envelope, as the SDKs unwrap.
    let enveloped = |inner: &str| {
        json!({"allOf": [
            {"$ref": "#/components/schemas/iam_api-response-single"},
            {"properties": {"result": {"$ref": format!("#/components/schemas/{inner}")}}}
        ]})
    };
    let paths = &mut doc["paths"];
    let ok = |paths: &mut Value, path: &str, method: &str, schema: Value| {
        paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"] = schema;
    };
    let pg = "/accounts/{account_id}/iam/permission_groups/{permission_group_id}";
    let rg = "/accounts/{account_id}/iam/resource_groups/{resource_group_id}";
    ok(paths, pg, "get", enveloped("iam_permission_group"));
    ok(paths, rg, "get", enveloped("iam_resource_group"));
    ok(paths, rg, "put", enveloped("iam_resource_group"));
    ok(
        paths,
        "/accounts/{account_id}/iam/resource_groups",
        "post",
        enveloped("iam_resource_group"),
    );
}
