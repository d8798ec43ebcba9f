//! JSON-RPC 2.0 framing.
//!
//! [`parse`] turns raw bytes into an [`Incoming`] message (or batch) and reports
//! failures precisely: bytes that are not JSON give [`FramingError::Parse`]
//! (`-32700`, answered with `id: null`), a JSON value that is not a request,
//! notification or response gives [`FramingError::InvalidRequest`] (`-32600`,
//! answered with the request's `id` when it could be read).
//!
//! ```
//! use mcp_core::jsonrpc::{parse, Incoming, Message, RequestId};
//!
//! let msg = parse(br#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#).unwrap();
//! let Incoming::Single(Message::Request(req)) = msg else { panic!() };
//! assert_eq!(req.id, RequestId::String("a".into()));
//! assert_eq!(req.method, "ping");
//! ```

use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::codes;

/// The only JSON-RPC version MCP speaks.
pub const JSONRPC_VERSION: &str = "2.0";

/// A request id: a string or an integer, never `null`. Its type is kept, so a
/// response carries back exactly the id the peer sent.
///
/// ```
/// use mcp_core::jsonrpc::RequestId;
/// let id: RequestId = serde_json::from_str("7").unwrap();
/// assert_eq!(serde_json::to_string(&id).unwrap(), "7");
/// let id: RequestId = serde_json::from_str("\"7\"").unwrap();
/// assert_eq!(serde_json::to_string(&id).unwrap(), "\"7\"");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// An integer id.
    Number(i64),
    /// A string id.
    String(String),
}

impl RequestId {
    /// Reads an id from a JSON value: integers and strings only.
    pub fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Self::String(s.clone())),
            Value::Number(n) => n.as_i64().map(Self::Number),
            _ => None,
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<i64> for RequestId {
    fn from(value: i64) -> Self {
        Self::Number(value)
    }
}

impl From<&str> for RequestId {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

/// A request: expects exactly one response with the same id.
///
/// ```
/// use mcp_core::jsonrpc::Request;
/// let req = Request::new(1, "tools/list", None);
/// assert_eq!(
///     serde_json::to_string(&req).unwrap(),
///     r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The id the response must echo.
    pub id: RequestId,
    /// The method name.
    pub method: String,
    /// The parameters, when present.
    pub params: Option<Value>,
}

impl Request {
    /// Builds a request.
    pub fn new(id: impl Into<RequestId>, method: impl Into<String>, params: Option<Value>) -> Self {
        Self { id: id.into(), method: method.into(), params }
    }
}

/// A notification: no id, never answered.
///
/// ```
/// use mcp_core::jsonrpc::Notification;
/// let n = Notification::new("notifications/initialized", None);
/// assert_eq!(
///     serde_json::to_string(&n).unwrap(),
///     r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// The method name.
    pub method: String,
    /// The parameters, when present.
    pub params: Option<Value>,
}

impl Notification {
    /// Builds a notification.
    pub fn new(method: impl Into<String>, params: Option<Value>) -> Self {
        Self { method: method.into(), params }
    }
}

/// A successful response.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The id of the request this answers.
    pub id: RequestId,
    /// The result object.
    pub result: Value,
}

impl Response {
    /// Builds a successful response.
    pub fn new(id: RequestId, result: Value) -> Self {
        Self { id, result }
    }
}

/// The `error` member of an error response.
///
/// ```
/// use mcp_core::jsonrpc::ErrorObject;
/// let e = ErrorObject::new(-32601, "Method not found: foo/bar");
/// assert_eq!(
///     serde_json::to_string(&e).unwrap(),
///     r#"{"code":-32601,"message":"Method not found: foo/bar"}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// The error code.
    pub code: i32,
    /// A short description.
    pub message: String,
    /// Extra information, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// Builds an error object without data.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    /// Adds data to the error.
    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// An error response. `id` is `None` only when the request's id could not be read.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorResponse {
    /// The id of the request this answers, when it could be read.
    pub id: Option<RequestId>,
    /// The error.
    pub error: ErrorObject,
}

impl ErrorResponse {
    /// Builds an error response.
    pub fn new(id: Option<RequestId>, error: ErrorObject) -> Self {
        Self { id, error }
    }
}

/// Any single JSON-RPC message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A notification.
    Notification(Notification),
    /// A successful response.
    Response(Response),
    /// An error response.
    Error(ErrorResponse),
}

impl From<Request> for Message {
    fn from(value: Request) -> Self {
        Self::Request(value)
    }
}
impl From<Notification> for Message {
    fn from(value: Notification) -> Self {
        Self::Notification(value)
    }
}
impl From<Response> for Message {
    fn from(value: Response) -> Self {
        Self::Response(value)
    }
}
impl From<ErrorResponse> for Message {
    fn from(value: ErrorResponse) -> Self {
        Self::Error(value)
    }
}

/// What one read of the wire holds: one message or a batch (2025-03-26 only).
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// A single message.
    Single(Message),
    /// A non-empty batch; each element parsed on its own.
    Batch(Vec<Result<Message, FramingError>>),
}

/// Why bytes could not be read as JSON-RPC.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FramingError {
    /// Not JSON at all (`-32700`).
    #[error("Parse error: {0}")]
    Parse(String),
    /// JSON, but not a valid JSON-RPC message (`-32600`).
    #[error("Invalid Request: {reason}")]
    InvalidRequest {
        /// The id, when one could be read.
        id: Option<RequestId>,
        /// What was wrong.
        reason: String,
    },
}

impl FramingError {
    fn invalid(id: Option<RequestId>, reason: impl Into<String>) -> Self {
        Self::InvalidRequest { id, reason: reason.into() }
    }

    /// The error response a peer should get for this failure.
    ///
    /// ```
    /// use mcp_core::jsonrpc::parse;
    /// let err = parse(b"{not json").unwrap_err();
    /// let resp = err.to_response();
    /// assert_eq!(resp.id, None);
    /// assert_eq!(resp.error.code, -32700);
    /// ```
    pub fn to_response(&self) -> ErrorResponse {
        match self {
            Self::Parse(_) => {
                ErrorResponse::new(None, ErrorObject::new(codes::PARSE_ERROR, self.to_string()))
            }
            Self::InvalidRequest { id, .. } => {
                ErrorResponse::new(id.clone(), ErrorObject::new(codes::INVALID_REQUEST, self.to_string()))
            }
        }
    }
}

/// Parses one read of the wire.
///
/// ```
/// use mcp_core::jsonrpc::{parse, FramingError};
/// assert!(matches!(parse(b"[1,"), Err(FramingError::Parse(_))));
/// assert!(matches!(parse(b"42"), Err(FramingError::InvalidRequest { .. })));
/// assert!(matches!(parse(b"[]"), Err(FramingError::InvalidRequest { .. })));
/// ```
pub fn parse(bytes: &[u8]) -> Result<Incoming, FramingError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let values: Vec<Value> =
            serde_json::from_slice(bytes).map_err(|e| FramingError::Parse(e.to_string()))?;
        if values.is_empty() {
            return Err(FramingError::invalid(None, "empty batch"));
        }
        return Ok(Incoming::Batch(values.into_iter().map(message_from_value).collect()));
    }
    match serde_json::from_slice::<Message>(bytes) {
        Ok(message) => Ok(Incoming::Single(message)),
        Err(e) if e.is_data() => {
            // Valid JSON, wrong shape: read it again loosely to recover the id.
            let value: Value =
                serde_json::from_slice(bytes).map_err(|e| FramingError::Parse(e.to_string()))?;
            message_from_value(value).map(Incoming::Single)
        }
        Err(e) => Err(FramingError::Parse(e.to_string())),
    }
}

/// A message (or any JSON-RPC part) as one line of JSON. The buffer starts
/// at a size that holds most messages, so it is seldom grown while writing.
///
/// ```
/// use mcp_core::jsonrpc::{to_json_vec, Message, Request};
/// let bytes = to_json_vec(&Message::from(Request::new(1, "ping", None))).unwrap();
/// assert_eq!(bytes, br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
/// ```
pub fn to_json_vec(message: &impl Serialize) -> Result<Vec<u8>, serde_json::Error> {
    let mut buffer = Vec::with_capacity(512);
    serde_json::to_writer(&mut buffer, message)?;
    Ok(buffer)
}

/// Classifies an already-parsed JSON value as a message.
///
/// ```
/// use mcp_core::jsonrpc::{message_from_value, Message};
/// let v = serde_json::json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}});
/// assert!(matches!(message_from_value(v), Ok(Message::Notification(_))));
/// ```
pub fn message_from_value(value: Value) -> Result<Message, FramingError> {
    let Value::Object(map) = value else {
        return Err(FramingError::invalid(None, "a message must be a JSON object"));
    };
    let raw = RawMessage {
        jsonrpc: map.get("jsonrpc").cloned(),
        id: map.get("id").cloned(),
        method: map.get("method").cloned(),
        params: map.get("params").cloned(),
        result: map.get("result").cloned(),
        error: map.get("error").cloned(),
    };
    raw.into_message()
}

/// The loose shape every message is read into before it is classified.
/// `Some(Value::Null)` means "present and null", `None` means "absent".
#[derive(Deserialize)]
struct RawMessage {
    #[serde(default, deserialize_with = "present")]
    jsonrpc: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    method: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    params: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl RawMessage {
    fn into_message(self) -> Result<Message, FramingError> {
        let null_id = matches!(self.id, Some(Value::Null));
        let id = match &self.id {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                RequestId::from_value(v)
                    .ok_or_else(|| FramingError::invalid(None, "id must be a string or an integer"))?,
            ),
        };
        if self.jsonrpc.as_ref().and_then(Value::as_str) != Some(JSONRPC_VERSION) {
            return Err(FramingError::invalid(id, "jsonrpc must be \"2.0\""));
        }
        let params = match self.params {
            None => None,
            Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
            Some(_) => return Err(FramingError::invalid(id, "params must be an object or an array")),
        };
        if let Some(method) = self.method {
            let Value::String(method) = method else {
                return Err(FramingError::invalid(id, "method must be a string"));
            };
            if self.result.is_some() || self.error.is_some() {
                return Err(FramingError::invalid(id, "a request cannot carry result or error"));
            }
            return match (id, null_id) {
                (_, true) => Err(FramingError::invalid(None, "id must not be null")),
                (Some(id), _) => Ok(Message::Request(Request { id, method, params })),
                (None, _) => Ok(Message::Notification(Notification { method, params })),
            };
        }
        match (self.result, self.error) {
            (Some(result), None) => {
                let id = id.ok_or_else(|| FramingError::invalid(None, "a response needs an id"))?;
                Ok(Message::Response(Response { id, result }))
            }
            (None, Some(error)) => {
                let error: ErrorObject = serde_json::from_value(error)
                    .map_err(|e| FramingError::invalid(id.clone(), format!("malformed error object: {e}")))?;
                Ok(Message::Error(ErrorResponse { id, error }))
            }
            _ => Err(FramingError::invalid(id, "not a request, notification or response")),
        }
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RawMessage::deserialize(deserializer)?.into_message().map_err(de::Error::custom)
    }
}

struct Version;
impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(JSONRPC_VERSION)
    }
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Request", 4)?;
        st.serialize_field("jsonrpc", &Version)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("method", &self.method)?;
        if let Some(params) = &self.params {
            st.serialize_field("params", params)?;
        }
        st.end()
    }
}

impl Serialize for Notification {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Notification", 3)?;
        st.serialize_field("jsonrpc", &Version)?;
        st.serialize_field("method", &self.method)?;
        if let Some(params) = &self.params {
            st.serialize_field("params", params)?;
        }
        st.end()
    }
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Response", 3)?;
        st.serialize_field("jsonrpc", &Version)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("result", &self.result)?;
        st.end()
    }
}

impl Serialize for ErrorResponse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ErrorResponse", 3)?;
        st.serialize_field("jsonrpc", &Version)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("error", &self.error)?;
        st.end()
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Request(m) => m.serialize(s),
            Self::Notification(m) => m.serialize(s),
            Self::Response(m) => m.serialize(s),
            Self::Error(m) => m.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invalid_id(bytes: &[u8]) -> Option<RequestId> {
        match parse(bytes) {
            Err(FramingError::InvalidRequest { id, .. }) => id,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    #[test]
    fn unparseable_json_is_parse_error_with_null_id() {
        let err = parse(b"{\"jsonrpc\":").unwrap_err();
        assert!(matches!(err, FramingError::Parse(_)));
        let text = serde_json::to_value(err.to_response()).unwrap();
        assert_eq!(text["id"], Value::Null);
        assert_eq!(text["error"]["code"], -32700);
    }

    #[test]
    fn wrong_shapes_are_invalid_requests() {
        assert_eq!(invalid_id(br#"{"jsonrpc":"1.0","id":4,"method":"x"}"#), Some(RequestId::Number(4)));
        assert_eq!(
            invalid_id(br#"{"jsonrpc":"2.0","id":"k","method":7}"#),
            Some(RequestId::String("k".into()))
        );
        assert_eq!(invalid_id(br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#), None);
        assert_eq!(invalid_id(br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#), None);
        assert_eq!(
            invalid_id(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#),
            Some(RequestId::Number(1))
        );
        assert_eq!(invalid_id(br#"{"jsonrpc":"2.0","id":1}"#), Some(RequestId::Number(1)));
        assert_eq!(invalid_id(b"\"hello\""), None);
    }

    #[test]
    fn ids_keep_their_type() {
        for id in [json!(1), json!("1"), json!(-9), json!("")] {
            let text = json!({"jsonrpc":"2.0","id":id,"method":"ping"}).to_string();
            let Incoming::Single(Message::Request(req)) = parse(text.as_bytes()).unwrap() else { panic!() };
            let back = serde_json::to_value(Response::new(req.id, json!({}))).unwrap();
            assert_eq!(back["id"], id);
        }
    }

    #[test]
    fn classifies_every_kind() {
        let cases = [
            (json!({"jsonrpc":"2.0","id":1,"method":"m"}), "request"),
            (json!({"jsonrpc":"2.0","method":"m"}), "notification"),
            (json!({"jsonrpc":"2.0","id":1,"result":{}}), "response"),
            (json!({"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"x"}}), "error"),
            (json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}), "error"),
            (json!({"jsonrpc":"2.0","id":null,"result":{}}), "invalid"),
        ];
        for (value, kind) in cases {
            let got = match parse(value.to_string().as_bytes()) {
                Ok(Incoming::Single(Message::Request(_))) => "request",
                Ok(Incoming::Single(Message::Notification(_))) => "notification",
                Ok(Incoming::Single(Message::Response(_))) => "response",
                Ok(Incoming::Single(Message::Error(_))) => "error",
                _ => "invalid",
            };
            assert_eq!(got, kind, "{value}");
        }
    }

    #[test]
    fn batch_elements_parse_independently() {
        let Incoming::Batch(items) = parse(br#"[{"jsonrpc":"2.0","id":1,"method":"a"}, 5]"#).unwrap() else {
            panic!()
        };
        assert!(items[0].is_ok());
        assert!(items[1].is_err());
    }
}
