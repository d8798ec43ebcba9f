//! JSON Schemas for tool input and output, and argument validation.

use mcp_core::types::JsonObject;
use schemars::JsonSchema;
use serde_json::Value;

/// The JSON Schema of `T` as a standalone document (JSON Schema 2020-12, the
/// MCP default dialect, so no `$schema` key is emitted).
pub(crate) fn type_schema_for<T: JsonSchema>() -> JsonObject {
    let schema =
        schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>();
    let mut object = match schema.to_value() {
        Value::Object(map) => map,
        // `true` accepts anything: an empty object schema says the same.
        _ => JsonObject::new(),
    };
    object.remove("$schema");
    let mut value = Value::Object(object);
    split_type_unions(&mut value);
    match value {
        Value::Object(object) => object,
        _ => JsonObject::new(),
    }
}

/// Rewrites every `"type": [..]` array (which schemars emits for `Option<T>`,
/// `["string", "null"]`) as `anyOf` branches of one `type` each. Both mean the
/// same in JSON Schema, but clients that map tool schemas onto a dialect with a
/// single `type` per schema (OpenAPI-style function declarations) reject or
/// drop the array form; the `anyOf` form carries over.
fn split_type_unions(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::Array(types)) = object.get("type")
                && types.len() > 1
                && !object.contains_key("anyOf")
            {
                let branches: Vec<Value> = types
                    .iter()
                    .map(|t| Value::Object(JsonObject::from_iter([("type".into(), t.clone())])))
                    .collect();
                object.remove("type");
                object.insert("anyOf".into(), Value::Array(branches));
            }
            object.values_mut().for_each(split_type_unions);
        }
        Value::Array(items) => items.iter_mut().for_each(split_type_unions),
        _ => {}
    }
}

/// The input schema of an arguments type: always an object schema, with the
/// generated type name dropped.
pub(crate) fn input_schema_for<T: JsonSchema>() -> JsonObject {
    let mut object = type_schema_for::<T>();
    object.remove("title");
    object.insert("type".into(), Value::String("object".into()));
    object.entry("properties").or_insert_with(|| Value::Object(JsonObject::new()));
    object
}

/// MCP output schemas must describe an object. A schema that does not is
/// wrapped as `{"result": schema}`; the flag says whether that happened.
pub(crate) fn object_output_schema(mut schema: JsonObject) -> (JsonObject, bool) {
    if schema.get("type").and_then(Value::as_str) == Some("object") {
        return (schema, false);
    }
    let defs = schema.remove("$defs");
    schema.remove("title");
    let mut properties = JsonObject::new();
    properties.insert("result".into(), Value::Object(schema));
    let mut wrapped = JsonObject::new();
    wrapped.insert("type".into(), "object".into());
    wrapped.insert("properties".into(), Value::Object(properties));
    wrapped.insert("required".into(), Value::Array(vec!["result".into()]));
    if let Some(defs) = defs {
        wrapped.insert("$defs".into(), defs);
    }
    (wrapped, true)
}

/// The JSON type of a tool argument mirrored in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderParamKind {
    String,
    Integer,
    Boolean,
}

/// A tool argument the client mirrors in an `Mcp-Param-{header}` header
/// (`x-mcp-header`, 2026-07-28), so intermediaries can route on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderParam {
    /// The header suffix as declared.
    pub(crate) header: String,
    /// The chain of `properties` keys leading to the argument.
    pub(crate) path: Vec<String>,
    pub(crate) kind: HeaderParamKind,
}

/// RFC 9110 `tchar`.
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The `x-mcp-header` arguments of an input schema. Declarations that break
/// the spec's rules (not an RFC 9110 token, duplicate ignoring case, not a
/// string/integer/boolean) are left out with a warning.
pub(crate) fn header_params(schema: &JsonObject) -> Vec<HeaderParam> {
    let mut found = Vec::new();
    collect_header_params(schema, &mut Vec::new(), &mut found);
    // A name declared twice (ignoring case) is ambiguous: neither declaration counts.
    let declared = |name: &str| found.iter().filter(|p| p.header.eq_ignore_ascii_case(name)).count();
    let valid = found.iter().filter(|p| is_token(&p.header) && declared(&p.header) == 1).cloned().collect();
    for param in &found {
        if !is_token(&param.header) || declared(&param.header) > 1 {
            tracing::warn!(header = %param.header, "ignoring an invalid or duplicate x-mcp-header declaration");
        }
    }
    valid
}

fn collect_header_params(schema: &JsonObject, path: &mut Vec<String>, out: &mut Vec<HeaderParam>) {
    // Only chains of `properties` count: never items, combinators, conditionals or $ref.
    let Some(Value::Object(properties)) = schema.get("properties") else { return };
    for (name, property) in properties {
        let Value::Object(property) = property else { continue };
        path.push(name.clone());
        if let Some(header) = property.get("x-mcp-header").and_then(Value::as_str) {
            let kind = match property.get("type").and_then(Value::as_str) {
                Some("string") => Some(HeaderParamKind::String),
                Some("integer") => Some(HeaderParamKind::Integer),
                Some("boolean") => Some(HeaderParamKind::Boolean),
                _ => None,
            };
            match kind {
                Some(kind) => out.push(HeaderParam { header: header.to_owned(), path: path.clone(), kind }),
                None => tracing::warn!(
                    header,
                    "x-mcp-header is only allowed on string, integer or boolean arguments"
                ),
            }
        }
        collect_header_params(property, path, out);
        path.pop();
    }
}

/// Checks call arguments against a tool's input schema. External references
/// are never fetched: the validator is built without any network resolver.
#[derive(Debug)]
pub(crate) enum ArgumentValidator {
    Ready(Box<jsonschema::Validator>),
    /// The tool's schema itself is invalid; every call fails with this message.
    BrokenSchema(String),
}

/// How many validation errors one message lists at most.
const MAX_REPORTED_ERRORS: usize = 5;

impl ArgumentValidator {
    pub(crate) fn new(schema: &JsonObject) -> Self {
        match jsonschema::validator_for(&Value::Object(schema.clone())) {
            Ok(v) => Self::Ready(Box::new(v)),
            Err(e) => Self::BrokenSchema(format!("the tool's input schema is invalid: {e}")),
        }
    }

    /// Checks `arguments` (a JSON object) in place. `Err` carries a message
    /// suitable for an `isError` result.
    pub(crate) fn validate(&self, arguments: &Value) -> Result<(), String> {
        let validator = match self {
            Self::Ready(v) => v,
            Self::BrokenSchema(message) => return Err(message.clone()),
        };
        // The common case, valid arguments, without collecting errors.
        if validator.is_valid(arguments) {
            return Ok(());
        }
        let problems: Vec<String> = validator
            .iter_errors(arguments)
            .take(MAX_REPORTED_ERRORS)
            .map(|e| {
                let path = e.instance_path().to_string();
                if path.is_empty() { e.to_string() } else { format!("{path}: {e}") }
            })
            .collect();
        if problems.is_empty() { Ok(()) } else { Err(format!("Invalid arguments: {}", problems.join("; "))) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Args {
        /// The left operand.
        a: i64,
        b: Option<String>,
    }

    #[test]
    fn input_schema_marks_options_optional() {
        let schema = input_schema_for::<Args>();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["required"], json!(["a"]));
        assert_eq!(schema["properties"]["a"]["description"], "The left operand.");
        assert!(!schema.contains_key("title"));
        assert!(!schema.contains_key("$schema"));
    }

    #[test]
    fn optional_fields_use_single_type_branches() {
        #[allow(dead_code)]
        #[derive(JsonSchema)]
        struct Out {
            login: Option<String>,
            tags: Vec<Option<u8>>,
        }
        let schema = Value::Object(type_schema_for::<Out>());
        let login = &schema["properties"]["login"];
        assert_eq!(login["anyOf"], json!([{"type": "string"}, {"type": "null"}]), "{schema}");
        assert!(login.get("type").is_none());
        let item = &schema["properties"]["tags"]["items"];
        assert_eq!(item["anyOf"], json!([{"type": "integer"}, {"type": "null"}]), "{schema}");
        assert!(!schema.to_string().contains(r#""type":["#), "no type arrays left: {schema}");
        // Still valid for both null and a value.
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(validator.is_valid(&json!({"login": null, "tags": [1, null]})));
        assert!(!validator.is_valid(&json!({"login": 5, "tags": []})));
    }

    #[test]
    fn primitive_output_is_wrapped() {
        let (schema, wrapped) = object_output_schema(type_schema_for::<i64>());
        assert!(wrapped);
        assert_eq!(schema["properties"]["result"]["type"], "integer");
        let (_, wrapped) = object_output_schema(input_schema_for::<Args>());
        assert!(!wrapped);
    }

    #[test]
    fn header_params_follow_properties_only_and_valid_names() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "again": {"type": "string", "x-mcp-header": "region"},
            "ratio": {"type": "number", "x-mcp-header": "Ratio"},
            "bad": {"type": "string", "x-mcp-header": "Bad Name"},
            "nested": {"type": "object", "properties": {"id": {"type": "integer", "x-mcp-header": "Id"}}},
            "list": {"type": "array", "items": {"type": "string", "x-mcp-header": "Item"}},
        }});
        let params = header_params(schema.as_object().unwrap());
        let names: Vec<_> = params.iter().map(|p| (p.header.as_str(), p.path.join("."))).collect();
        assert_eq!(
            names,
            [("Id", "nested.id".to_string())],
            "duplicates, numbers, bad names and items are out"
        );
    }

    #[test]
    fn validation_reports_wrong_types() {
        let validator = ArgumentValidator::new(&input_schema_for::<Args>());
        assert!(validator.validate(&json!({"a": 1})).is_ok());
        let err = validator.validate(&json!({"a": "x"})).unwrap_err();
        assert!(err.contains("/a"), "{err}");
        let err = validator.validate(&json!({})).unwrap_err();
        assert!(err.contains("\"a\" is a required property"), "{err}");
    }
}
