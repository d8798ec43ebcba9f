//! The MCP request headers and the modern-era checks of headers against the
//! body (CONFORMANCE §4b.5, SPEC §3.1).

use base64::Engine as _;
use http::HeaderMap;
use http::header::{AsHeaderName, HeaderName};
use mcp_core::jsonrpc::Request;
use mcp_core::types::methods;
use mcp_core::{McpError, ProtocolVersion, meta};
use serde_json::Value;

use crate::dispatch::{ModernMeta, modern_meta, request_meta};
use crate::schema::{HeaderParam, HeaderParamKind};

// Header names as constants: looking them up needs no parsing of the name.
pub(super) static PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
pub(super) static SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
pub(super) static METHOD: HeaderName = HeaderName::from_static("mcp-method");
pub(super) static NAME: HeaderName = HeaderName::from_static("mcp-name");

/// A header's value with surrounding whitespace trimmed; `Err` when it holds
/// characters that are not visible ASCII.
fn value<K>(headers: &HeaderMap, name: K) -> Result<Option<&str>, McpError>
where
    K: AsHeaderName + Copy + std::fmt::Display,
{
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| McpError::HeaderMismatch(format!("the {name} header has invalid characters"))),
    }
}

/// The `Mcp-Session-Id` header, when present and readable.
pub(super) fn session_id(headers: &HeaderMap) -> Option<String> {
    value(headers, &SESSION_ID).ok().flatten().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The `MCP-Protocol-Version` header as sent, when readable.
pub(super) fn protocol_version(headers: &HeaderMap) -> Option<&str> {
    value(headers, &PROTOCOL_VERSION).ok().flatten()
}

/// Whether the message belongs to the modern era: `_meta` names a version, or
/// the `MCP-Protocol-Version` header is a modern one.
pub(super) fn is_modern(headers: &HeaderMap, params: Option<&Value>) -> bool {
    crate::dispatch::is_modern_request(params)
        || protocol_version(headers)
            .and_then(|v| v.parse::<ProtocolVersion>().ok())
            .is_some_and(|v| v.is_modern())
}

/// Checks a modern request's headers and `_meta`, in the order the
/// conformance suite expects: missing version header (`-32020`), bad `_meta`
/// (`-32602`), header ≠ `_meta` (`-32020`), unsupported version (`-32022`),
/// then `Mcp-Method` and `Mcp-Name` (`-32020`).
pub(super) fn check_modern(headers: &HeaderMap, request: &Request) -> Result<ModernMeta, McpError> {
    let header_version = value(headers, &PROTOCOL_VERSION)?
        .ok_or_else(|| McpError::HeaderMismatch("the MCP-Protocol-Version header is missing".into()))?;
    let params = request.params.as_ref();
    let m = request_meta(params).ok_or_else(|| McpError::invalid_params("missing _meta"))?;
    let meta_version = m
        .get(meta::PROTOCOL_VERSION)
        .and_then(Value::as_str)
        .ok_or_else(|| McpError::invalid_params(format!("_meta is missing {}", meta::PROTOCOL_VERSION)))?;
    if !m.get(meta::CLIENT_CAPABILITIES).is_some_and(Value::is_object) {
        return Err(McpError::invalid_params(format!("_meta is missing {}", meta::CLIENT_CAPABILITIES)));
    }
    if header_version != meta_version {
        return Err(McpError::HeaderMismatch(format!(
            "MCP-Protocol-Version header {header_version:?} differs from _meta {meta_version:?}"
        )));
    }
    let checked = modern_meta(params)?;
    let method = value(headers, &METHOD)?
        .ok_or_else(|| McpError::HeaderMismatch("the Mcp-Method header is missing".into()))?;
    if method != request.method {
        return Err(McpError::HeaderMismatch(format!(
            "Mcp-Method header {method:?} differs from the body's method {:?}",
            request.method
        )));
    }
    check_name(headers, request)?;
    Ok(checked)
}

/// `Mcp-Name` must equal `params.name` (tools, prompts) or `params.uri` (resources).
fn check_name(headers: &HeaderMap, request: &Request) -> Result<(), McpError> {
    let key = match request.method.as_str() {
        methods::TOOLS_CALL | methods::PROMPTS_GET => "name",
        methods::RESOURCES_READ => "uri",
        _ => return Ok(()),
    };
    // Without the body value the handler reports invalid params.
    let Some(expected) = request.params.as_ref().and_then(|p| p.get(key)).and_then(Value::as_str) else {
        return Ok(());
    };
    let raw = value(headers, &NAME)?
        .ok_or_else(|| McpError::HeaderMismatch("the Mcp-Name header is missing".into()))?;
    let name = decode_sentinel(raw)
        .ok_or_else(|| McpError::HeaderMismatch("the Mcp-Name header has an invalid base64 value".into()))?;
    if name != expected {
        return Err(McpError::HeaderMismatch(format!(
            "Mcp-Name header {name:?} differs from params.{key} {expected:?}"
        )));
    }
    Ok(())
}

/// Checks the `Mcp-Param-*` headers of a `tools/call` against the arguments
/// (SPEC §3.1): an argument present in the body needs its header, with an
/// equal value (base64 sentinel decoded; integers compared numerically); an
/// absent or null argument needs none.
pub(super) fn check_params(
    headers: &HeaderMap,
    arguments: Option<&Value>,
    params: &[HeaderParam],
) -> Result<(), McpError> {
    for param in params {
        let body = param.path.iter().try_fold(arguments, |v, key| Some(v?.get(key)));
        let Some(body) = body.flatten().filter(|v| !v.is_null()) else { continue };
        let name = format!("mcp-param-{}", param.header);
        let raw = value(headers, &name)?.ok_or_else(|| {
            McpError::HeaderMismatch(format!("the Mcp-Param-{} header is missing", param.header))
        })?;
        let sent = decode_sentinel(raw).ok_or_else(|| {
            McpError::HeaderMismatch(format!(
                "the Mcp-Param-{} header has an invalid base64 value",
                param.header
            ))
        })?;
        let matches = match param.kind {
            HeaderParamKind::String => body.as_str() == Some(sent.as_str()),
            HeaderParamKind::Boolean => body.as_bool().map(|b| b.to_string()) == Some(sent.clone()),
            HeaderParamKind::Integer => {
                let number: Option<f64> = sent.parse().ok();
                number.is_some_and(|n| body.as_f64() == Some(n))
            }
        };
        if !matches {
            return Err(McpError::HeaderMismatch(format!(
                "Mcp-Param-{} header {sent:?} differs from the argument {body}",
                param.header
            )));
        }
    }
    Ok(())
}

/// Decodes the `=?base64?…?=` form of a header value; other values are
/// returned as they are. `None` when the encoded form is invalid.
pub(super) fn decode_sentinel(raw: &str) -> Option<String> {
    let Some(encoded) = raw.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) else {
        return Some(raw.to_owned());
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_headers_must_match_present_arguments() {
        let params = [
            HeaderParam {
                header: "Region".into(),
                path: vec!["region".into()],
                kind: HeaderParamKind::String,
            },
            HeaderParam {
                header: "Count".into(),
                path: vec!["count".into()],
                kind: HeaderParamKind::Integer,
            },
        ];
        let mut headers = HeaderMap::new();
        headers.insert("mcp-param-region", "=?base64?SGVsbG8=?=".parse().unwrap());
        headers.insert("mcp-param-count", "42.0".parse().unwrap());
        let args = serde_json::json!({"region": "Hello", "count": 42});
        assert!(check_params(&headers, Some(&args), &params).is_ok());
        let args = serde_json::json!({"region": "Bye", "count": 42});
        assert!(check_params(&headers, Some(&args), &params).is_err());
        let absent = serde_json::json!({"region": "Hello", "count": null});
        headers.remove("mcp-param-count");
        assert!(check_params(&headers, Some(&absent), &params).is_ok(), "null arguments need no header");
        headers.insert("mcp-param-region", "=?base64?SGVsbG8?=".parse().unwrap());
        assert!(check_params(&headers, Some(&absent), &params).is_err(), "bad padding is refused");
    }

    #[test]
    fn sentinel_values_are_decoded() {
        assert_eq!(decode_sentinel("plain").as_deref(), Some("plain"));
        assert_eq!(decode_sentinel("=?base64?w6lsw6h2ZQ==?=").as_deref(), Some("élève"));
        assert_eq!(decode_sentinel("=?base64?!!?="), None);
    }
}
