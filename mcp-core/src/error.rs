//! JSON-RPC error codes and the typed protocol error.
//!
//! ```
//! use mcp_core::error::McpError;
//! use mcp_core::version::ProtocolVersion;
//!
//! let err = McpError::resource_not_found("test://missing");
//! // The code for "resource not found" changed in 2026-07-28.
//! assert_eq!(err.to_error_object(ProtocolVersion::V2025_11_25).code, -32002);
//! assert_eq!(err.to_error_object(ProtocolVersion::V2026_07_28).code, -32602);
//! ```

use serde_json::{Value, json};

use crate::jsonrpc::ErrorObject;
use crate::version::ProtocolVersion;

/// An error and the errors that caused it, as one line: `outer: cause: root cause`.
/// For logs and error messages about failed I/O, whose useful part (such as
/// "connection refused") is often a few sources down.
///
/// ```
/// #[derive(Debug)]
/// struct Refused;
/// impl std::fmt::Display for Refused {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("connection refused")
///     }
/// }
/// impl std::error::Error for Refused {}
///
/// #[derive(Debug)]
/// struct Connect(Refused);
/// impl std::fmt::Display for Connect {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("could not connect")
///     }
/// }
/// impl std::error::Error for Connect {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// assert_eq!(mcp_core::error::with_causes(&Connect(Refused)), "could not connect: connection refused");
/// ```
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

/// Numeric JSON-RPC and MCP error codes.
pub mod codes {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i32 = -32700;
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: i32 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i32 = -32602;
    /// Internal error.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// Resource not found (2025-11-25 and earlier; 2026-07-28 uses `-32602`).
    pub const RESOURCE_NOT_FOUND: i32 = -32002;
    /// An HTTP header disagrees with the body, is missing, or is malformed (2026-07-28).
    pub const HEADER_MISMATCH: i32 = -32020;
    /// The request needs a client capability the client did not declare (2026-07-28).
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i32 = -32021;
    /// The requested protocol version is not supported (2026-07-28).
    pub const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;
    /// A URL-mode elicitation is required first (2025-11-25 only).
    pub const URL_ELICITATION_REQUIRED: i32 = -32042;
}

/// A protocol-level failure, mapped to the JSON-RPC error of the revision in use.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The request is not valid JSON-RPC (`-32600`).
    #[error("Invalid request: {0}")]
    InvalidRequest(String),
    /// No such method (`-32601`).
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    /// The parameters are wrong (`-32602`): unknown tool or prompt, bad cursor, missing argument.
    #[error("Invalid params: {0}")]
    InvalidParams(String),
    /// The server failed (`-32603`). The message must not leak internals.
    #[error("Internal error: {0}")]
    Internal(String),
    /// No resource has this URI (`-32002` before 2026-07-28, `-32602` from it on).
    #[error("Resource not found: {uri}")]
    ResourceNotFound {
        /// The URI that was asked for.
        uri: String,
    },
    /// A transport header disagrees with the body (`-32020`).
    #[error("Header mismatch: {0}")]
    HeaderMismatch(String),
    /// The operation needs client capabilities this request did not declare (`-32021`).
    #[error("Missing required client capability")]
    MissingClientCapability {
        /// The capabilities needed, shaped like `ClientCapabilities` (e.g. `{"sampling":{}}`).
        required: Value,
    },
    /// The requested protocol version is not supported (`-32022`, or `-32602` at legacy `initialize`).
    #[error("Unsupported protocol version: {requested}")]
    UnsupportedProtocolVersion {
        /// The version the client asked for.
        requested: String,
    },
    /// Any other error, with an explicit code.
    #[error("{message}")]
    Other {
        /// The JSON-RPC code.
        code: i32,
        /// The message.
        message: String,
        /// Optional data.
        data: Option<Value>,
    },
}

impl McpError {
    /// Shorthand for [`McpError::InvalidParams`].
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::InvalidParams(message.into())
    }

    /// Shorthand for [`McpError::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// Shorthand for [`McpError::ResourceNotFound`].
    pub fn resource_not_found(uri: impl Into<String>) -> Self {
        Self::ResourceNotFound { uri: uri.into() }
    }

    /// Shorthand for [`McpError::MethodNotFound`].
    pub fn method_not_found(method: impl Into<String>) -> Self {
        Self::MethodNotFound(method.into())
    }

    /// The JSON-RPC code under `version`.
    pub fn code(&self, version: ProtocolVersion) -> i32 {
        match self {
            Self::InvalidRequest(_) => codes::INVALID_REQUEST,
            Self::MethodNotFound(_) => codes::METHOD_NOT_FOUND,
            Self::InvalidParams(_) => codes::INVALID_PARAMS,
            Self::Internal(_) => codes::INTERNAL_ERROR,
            Self::ResourceNotFound { .. } if version.is_modern() => codes::INVALID_PARAMS,
            Self::ResourceNotFound { .. } => codes::RESOURCE_NOT_FOUND,
            Self::HeaderMismatch(_) => codes::HEADER_MISMATCH,
            Self::MissingClientCapability { .. } => codes::MISSING_REQUIRED_CLIENT_CAPABILITY,
            Self::UnsupportedProtocolVersion { .. } if version.is_modern() => {
                codes::UNSUPPORTED_PROTOCOL_VERSION
            }
            Self::UnsupportedProtocolVersion { .. } => codes::INVALID_PARAMS,
            Self::Other { code, .. } => *code,
        }
    }

    /// The `error` member to send under `version`.
    pub fn to_error_object(&self, version: ProtocolVersion) -> ErrorObject {
        let data = match self {
            Self::ResourceNotFound { uri } => Some(json!({ "uri": uri })),
            Self::MissingClientCapability { required } => Some(json!({ "requiredCapabilities": required })),
            Self::UnsupportedProtocolVersion { requested } => Some(json!({
                "supported": ProtocolVersion::supported_strings(),
                "requested": requested,
            })),
            Self::Other { data, .. } => data.clone(),
            _ => None,
        };
        ErrorObject { code: self.code(version), message: self.to_string(), data }
    }

    /// Whether the HTTP transport answers this error with a 4xx status rather
    /// than 200 in the modern era (SPEC: `-32020`, `-32021`, `-32022`, `_meta` errors).
    pub fn is_transport_rejection(&self) -> bool {
        matches!(
            self,
            Self::HeaderMismatch(_)
                | Self::MissingClientCapability { .. }
                | Self::UnsupportedProtocolVersion { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_version_lists_supported_ones() {
        let e = McpError::UnsupportedProtocolVersion { requested: "v999".into() };
        let obj = e.to_error_object(ProtocolVersion::V2026_07_28);
        assert_eq!(obj.code, -32022);
        let data = obj.data.unwrap();
        assert_eq!(data["requested"], "v999");
        assert!(data["supported"].as_array().unwrap().iter().any(|v| v == "2026-07-28"));
        assert_eq!(e.code(ProtocolVersion::V2025_11_25), -32602);
    }

    #[test]
    fn missing_capability_names_it() {
        let e = McpError::MissingClientCapability { required: json!({"sampling": {}}) };
        let obj = e.to_error_object(ProtocolVersion::V2026_07_28);
        assert_eq!(obj.code, -32021);
        assert_eq!(obj.data.unwrap()["requiredCapabilities"]["sampling"], json!({}));
    }
}
