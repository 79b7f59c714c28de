//! Conformance of the requests the app sends to GitHub, checked against GitHub's own REST
//! description (`../shared/fixtures/github/openapi/api.github.com.subset.json`) when it is present.
//!
//! OpenAPI 3.0 schemas are not quite JSON Schema: `nullable: true` becomes "or null", OpenAPI-only
//! keywords (`example`, `discriminator`, `x-*`, ...) are dropped, and `$ref`s into
//! `#/components/schemas` are resolved by validating each operation's body schema inside a
//! document that also carries the (converted) components. Keywords follow JSON Schema draft 4, the
//! draft OpenAPI 3.0 builds on (`$ref` siblings ignored, boolean `exclusiveMaximum`).

use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where the description is looked for: in the shared fixtures (see [`super::shared`]).
pub fn description_path() -> PathBuf {
    super::shared::shared_path("fixtures/github/openapi/api.github.com.subset.json")
}

/// The validator built from GitHub's description, or `None` (after one loud line on stderr) when
/// `../shared/fixtures/github` is absent, as in a user's clone. A description that exists but
/// cannot be read is a test failure, not a skip.
pub fn validator() -> Option<&'static Validator> {
    static VALIDATOR: OnceLock<Option<Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let path = description_path();
            if !path.exists() {
                eprintln!(
                    "OpenAPI conformance SKIPPED: {} not found (set TOLLGATE_SHARED_DIR)",
                    path.display()
                );
                return None;
            }
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let document: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            Some(
                Validator::from_document(&document)
                    .unwrap_or_else(|e| panic!("cannot use {}: {e}", path.display())),
            )
        })
        .as_ref()
}

/// The operations of an OpenAPI description, ready to check requests against.
pub struct Validator {
    operations: Vec<Operation>,
}

struct Operation {
    method: String,
    template: String,
    segments: Vec<Segment>,
    id: String,
    body: Option<BodySchema>,
}

enum Segment {
    Literal(String),
    Parameter,
    /// `{path}` as the last segment of the contents API: one or more segments.
    Rest,
}

struct BodySchema {
    required: bool,
    schema: jsonschema::Validator,
}

impl Validator {
    pub fn from_document(document: &Value) -> Result<Validator, String> {
        let components = document
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .map(|schemas| {
                schemas
                    .iter()
                    .map(|(name, schema)| (name.clone(), convert(schema)))
                    .collect::<Map<_, _>>()
            })
            .unwrap_or_default();
        let paths = document
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("the description has no `paths`")?;
        let mut operations = Vec::new();
        for (template, item) in paths {
            let item = item
                .as_object()
                .ok_or(format!("path {template} is not an object"))?;
            for (method, operation) in item {
                if !matches!(
                    method.as_str(),
                    "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
                ) {
                    continue;
                }
                let id = operation
                    .get("operationId")
                    .and_then(Value::as_str)
                    .unwrap_or(template)
                    .to_owned();
                let body = match operation.get("requestBody") {
                    Some(request_body) => {
                        body_schema(request_body, &components).map_err(|e| format!("{id}: {e}"))?
                    }
                    None => None,
                };
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    segments: parse_template(template),
                    id,
                    body,
                });
            }
        }
        Ok(Validator { operations })
    }

    /// The operation id for a request, if the description has one for it.
    pub fn operation_id(&self, method: &str, path: &str) -> Option<&str> {
        self.find(method, path).ok().map(|op| op.id.as_str())
    }

    /// Checks one request: its method and path must be an operation of the description, and a
    /// JSON body must match the operation's `application/json` request-body schema. `path` is
    /// below the API root, without the query.
    pub fn check(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(), String> {
        let operation = self.find(method, path)?;
        match (&operation.body, body) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(format!(
                "{} {} ({}) takes no request body",
                operation.method, operation.template, operation.id
            )),
            (Some(schema), None) if schema.required => Err(format!(
                "{} {} ({}) requires a request body",
                operation.method, operation.template, operation.id
            )),
            (Some(_), None) => Ok(()),
            (Some(schema), Some(body)) => {
                let errors: Vec<String> = schema
                    .schema
                    .iter_errors(body)
                    .take(5)
                    .map(|error| format!("at `{}`: {error}", error.instance_path()))
                    .collect();
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "{} {} ({}): request body does not match GitHub's schema: {}",
                        operation.method,
                        operation.template,
                        operation.id,
                        errors.join("; ")
                    ))
                }
            }
        }
    }

    fn find(&self, method: &str, path: &str) -> Result<&Operation, String> {
        let segments: Vec<&str> = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .split('/')
            .collect();
        let mut on_path: Vec<&Operation> = self
            .operations
            .iter()
            .filter(|op| template_matches(&op.segments, &segments))
            .collect();
        if on_path.is_empty() {
            return Err(format!(
                "{method} {path}: no path of GitHub's description matches"
            ));
        }
        // The most specific template wins (`issues/comments/{id}` over `issues/{number}`).
        on_path.sort_by_key(|op| {
            std::cmp::Reverse(
                op.segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Literal(_)))
                    .count(),
            )
        });
        let best = on_path[0].template.clone();
        on_path
            .into_iter()
            .filter(|op| op.template == best)
            .find(|op| op.method.eq_ignore_ascii_case(method))
            .ok_or_else(|| format!("{method} {path}: GitHub has no {method} on {best}"))
    }
}

fn parse_template(template: &str) -> Vec<Segment> {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let last = parts.len() - 1;
    parts
        .iter()
        .enumerate()
        .map(
            |(i, part)| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some("path") if i == last => Segment::Rest,
                Some(_) => Segment::Parameter,
                None => Segment::Literal((*part).to_owned()),
            },
        )
        .collect()
}

fn template_matches(template: &[Segment], path: &[&str]) -> bool {
    let mut rest = path;
    for segment in template {
        match segment {
            Segment::Rest => return !rest.is_empty() && rest.iter().all(|s| !s.is_empty()),
            _ => {
                let Some((first, tail)) = rest.split_first() else {
                    return false;
                };
                let ok = match segment {
                    Segment::Literal(literal) => literal == first,
                    _ => !first.is_empty(),
                };
                if !ok {
                    return false;
                }
                rest = tail;
            }
        }
    }
    rest.is_empty()
}

fn body_schema(
    request_body: &Value,
    components: &Map<String, Value>,
) -> Result<Option<BodySchema>, String> {
    let required = request_body
        .get("required")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(schema) = request_body.pointer("/content/application~1json/schema") else {
        return Ok(None);
    };
    let root = serde_json::json!({
        "allOf": [convert(schema)],
        "components": { "schemas": components },
    });
    let schema = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .should_ignore_unknown_formats(true)
        .build(&root)
        .map_err(|e| format!("cannot compile the request-body schema: {e}"))?;
    Ok(Some(BodySchema { required, schema }))
}

/// OpenAPI 3.0 schema object → JSON Schema (draft 4).
fn convert(schema: &Value) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    if let Some(reference) = object.get("$ref") {
        // OpenAPI 3.0 ignores everything beside a `$ref`.
        return serde_json::json!({ "$ref": reference });
    }
    let mut out = Map::new();
    for (key, value) in object {
        let converted = match key.as_str() {
            "nullable" | "example" | "examples" | "discriminator" | "xml" | "externalDocs"
            | "deprecated" | "readOnly" | "writeOnly" => continue,
            k if k.starts_with("x-") => continue,
            "properties" => Value::Object(
                value
                    .as_object()
                    .map(|props| props.iter().map(|(k, v)| (k.clone(), convert(v))).collect())
                    .unwrap_or_default(),
            ),
            "items" | "not" => convert(value),
            "additionalProperties" if value.is_object() => convert(value),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .map(|items| items.iter().map(convert).collect())
                    .unwrap_or_default(),
            ),
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if object.get("nullable") == Some(&Value::Bool(true)) {
        serde_json::json!({ "anyOf": [Value::Object(out), { "type": "null" }] })
    } else {
        Value::Object(out)
    }
}
