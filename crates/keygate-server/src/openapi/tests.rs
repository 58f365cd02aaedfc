use axum::response::IntoResponse;
use http_body_util::BodyExt;

use super::*;
use crate::error::ApiError;

fn document() -> Value {
    let doc = Document::build().expect("a document");
    serde_json::from_slice(doc.json()).expect("the document is JSON")
}

/// Every `$ref` string anywhere under `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

/// What a `$ref` inside the document points at.
fn resolve<'a>(doc: &'a Value, target: &str) -> Option<&'a Value> {
    doc.pointer(target.strip_prefix('#')?)
}

/// The operations of the document: (path, method, operation).
fn operations(doc: &Value) -> Vec<(&str, &str, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            out.push((path.as_str(), method.as_str(), op));
        }
    }
    out
}

/// A small JSON Schema check, enough for the error bodies: `type`, `enum`,
/// `required`, `properties`, `additionalProperties: false` and `oneOf`.
fn accepts(doc: &Value, schema: &Value, v: &Value) -> bool {
    if let Some(target) = schema["$ref"].as_str() {
        return resolve(doc, target).is_some_and(|s| accepts(doc, s, v));
    }
    if let Some(one_of) = schema["oneOf"].as_array() {
        return one_of.iter().filter(|s| accepts(doc, s, v)).count() == 1;
    }
    let type_ok = match schema["type"].as_str() {
        Some("object") => v.is_object(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some(_) => false,
        None => true,
    };
    if !type_ok {
        return false;
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(v)
    {
        return false;
    }
    let Some(object) = v.as_object() else {
        return true;
    };
    let properties = schema["properties"].as_object();
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    if required
        .iter()
        .filter_map(Value::as_str)
        .any(|field| !object.contains_key(field))
    {
        return false;
    }
    object.iter().all(
        |(field, value)| match properties.and_then(|p| p.get(field)) {
            Some(s) => accepts(doc, s, value),
            None => schema["additionalProperties"] != json!(false),
        },
    )
}

/// The body schema of the response `status` of `op`.
fn response_schema<'a>(doc: &'a Value, op: &'a Value, status: &str) -> Option<&'a Value> {
    let mut response = op["responses"].get(status)?;
    if let Some(target) = response["$ref"].as_str() {
        response = resolve(doc, target)?;
    }
    response["content"]["application/json"].get("schema")
}

async fn body_of(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("a body").to_bytes();
    (status, serde_json::from_slice(&bytes).expect("a JSON body"))
}

#[test]
fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "keygate");
    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(targets.len() > 50, "the document uses its components");
    for target in targets {
        assert!(resolve(&doc, target).is_some(), "{target} does not resolve");
    }
    // The security the operations name is the scheme the document defines.
    assert_eq!(doc["security"], json!([{ BEARER: [] }]));
    assert_eq!(
        doc["components"]["securitySchemes"][BEARER]["scheme"],
        "bearer"
    );
}

#[test]
fn every_operation_has_an_id_a_success_and_the_errors_it_can_meet() {
    let doc = document();
    let mut ids = std::collections::BTreeSet::new();
    for (path, method, op) in operations(&doc) {
        let id = op["operationId"].as_str().expect("an operationId");
        assert!(ids.insert(id), "{id} is not unique");
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path} has no success"
        );
        for (status, response) in responses {
            // Forward-auth's 200 is headers alone.
            if path == crate::forward_auth::PATH && status == "200" {
                assert!(response.get("content").is_none(), "{response}");
                assert!(response["headers"]["X-Keygate-Key-Id"].is_object());
                continue;
            }
            let schema = response_schema(&doc, op, status);
            assert!(
                schema.is_some(),
                "{method} {path} {status} has no JSON body: {response}"
            );
        }
        if [PATH, crate::leaks::PATH].contains(&path) {
            assert_eq!(op["security"], json!([{}]), "{path} takes no bearer key");
            assert!(responses.contains_key("403"), "the Origin guard");
            continue;
        }
        assert!(
            op.get("security").is_none(),
            "{method} {path} takes the bearer key"
        );
        for (status, _) in AUTHENTICATED {
            assert!(
                responses.contains_key(*status),
                "{method} {path} lacks {status}"
            );
        }
        let has_body = op.get("requestBody").is_some();
        assert_eq!(
            responses.contains_key("413"),
            has_body,
            "{method} {path}: a body can be too large"
        );
    }
    // 15 operations, the leak report, and forward-auth with 8 methods.
    assert_eq!(ids.len(), 24, "{ids:?}");
}

/// The error answers of the document accept exactly what the server writes: every
/// refusal of the auth layer and every admin-API error, as their own responses.
#[tokio::test]
async fn the_error_answers_accept_the_bodies_the_server_writes() {
    let doc = document();
    let components = &doc["components"]["responses"];
    let schema_of = |status: StatusCode| -> Vec<&Value> {
        components
            .as_object()
            .expect("responses")
            .values()
            .filter(|r| {
                r["description"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(&format!("{} ", status.as_u16())))
            })
            .map(|r| &r["content"]["application/json"]["schema"])
            .collect()
    };
    let mut answers = Vec::new();
    for e in auth_errors() {
        answers.push(body_of(e.into_response()).await);
    }
    for e in [
        ApiError::InsufficientScope,
        ApiError::NotFound,
        ApiError::Conflict("project `shop` already exists".to_owned()),
        ApiError::invalid("key name must not be empty"),
        ApiError::Unavailable,
        ApiError::TooLarge,
        ApiError::Internal,
    ] {
        answers.push(body_of(e.into_response()).await);
    }
    answers.push(body_of(crate::approvals::Refusal::TargetMismatch.into_response()).await);
    for (status, body) in &answers {
        let schemas = schema_of(*status);
        assert!(!schemas.is_empty(), "no answer for {status}");
        assert!(
            schemas.iter().any(|s| accepts(&doc, s, body)),
            "{status} {body} is not in the document"
        );
    }
    // And nothing else: a body with a wrong code, or an extra field, is refused.
    let forbidden = schema_of(StatusCode::FORBIDDEN);
    for wrong in [
        json!({"error": "not_found"}),
        json!({"error": "insufficient_scope", "message": "no"}),
        json!({}),
    ] {
        assert!(
            !forbidden.iter().any(|s| accepts(&doc, s, &wrong)),
            "{wrong}"
        );
    }
    let unauthorized = schema_of(StatusCode::UNAUTHORIZED);
    assert!(
        !unauthorized
            .iter()
            .any(|s| accepts(&doc, s, &json!({"error": "invalid_token"})))
    );
}

/// The constraints the document states are the ones the server checks.
#[test]
fn the_constraints_are_the_servers() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for schema in ["CreateKey", "CreateProject"] {
        let name = &schemas[schema]["properties"]["name"];
        assert_eq!(
            name["maxLength"],
            json!(keygate_client::MAX_NAME_CHARS),
            "{schema}"
        );
        assert_eq!(name["minLength"], 1, "{schema}");
        assert_eq!(schemas[schema]["additionalProperties"], false, "{schema}");
    }
    assert_eq!(
        schemas["ExpiresIn"]["oneOf"][0]["maximum"],
        json!(keygate_client::MAX_KEY_LIFETIME_SECS)
    );
    let limit = &doc["paths"]["/api/v1/audit"]["get"]["parameters"][0];
    assert_eq!(limit["name"], "limit");
    assert_eq!(limit["schema"]["maximum"], json!(crate::admin::MAX_AUDIT));
    assert_eq!(schemas["KeyKind"]["enum"], json!(["user", "tenant"]));
    assert_eq!(
        schemas["KeyStatus"]["enum"],
        json!(["active", "expired", "revoked"])
    );
    for (path, op) in [
        ("/api/v1/keys", "post"),
        ("/api/v1/keys/{id}/rotate", "post"),
    ] {
        let created = &doc["paths"][path][op]["responses"]["201"];
        let created = resolve(&doc, created["$ref"].as_str().expect("a reference"))
            .expect("the KeyIssued response");
        assert_eq!(
            created["headers"]["Cache-Control"]["schema"]["enum"],
            json!(["no-store"])
        );
        assert_eq!(
            created["links"]["RevokeKey"]["parameters"]["id"],
            "$response.body#/id"
        );
    }
}
