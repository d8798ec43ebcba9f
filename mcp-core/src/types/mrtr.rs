//! Multi round-trip requests (2026-07-28).
//!
//! A 2026-07-28 server never sends requests of its own. When a `tools/call`,
//! `prompts/get` or `resources/read` needs input from the client (elicitation,
//! sampling, roots), the server answers with an [`InputRequiredResult`]; the
//! client gathers the answers and retries the request with `inputResponses`
//! and the opaque `requestState`.
//!
//! ```
//! use mcp_core::types::{
//!     ElicitRequestParams, ElicitationSchema, InputRequest, InputRequiredResult, PrimitiveSchemaDefinition,
//! };
//!
//! let schema = ElicitationSchema::new().required_property("ok", PrimitiveSchemaDefinition::boolean());
//! let result = InputRequiredResult::new()
//!     .with_input_request("confirm", InputRequest::elicit(ElicitRequestParams::form("Proceed?", schema)))
//!     .with_request_state("sealed-state");
//! let v = serde_json::to_value(&result).unwrap();
//! assert_eq!(v["resultType"], "input_required");
//! assert_eq!(v["inputRequests"]["confirm"]["method"], "elicitation/create");
//! assert_eq!(v["requestState"], "sealed-state");
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{CreateMessageRequestParams, ElicitRequestParams, JsonObject, Meta};

/// What kind of result a 2026-07-28 response carries (`resultType`).
///
/// Values other than the known ones (extensions may add some) are kept in [`ResultType::Other`].
///
/// ```
/// use mcp_core::types::ResultType;
/// let t: ResultType = serde_json::from_str(r#""input_required""#).unwrap();
/// assert_eq!(t, ResultType::InputRequired);
/// let t: ResultType = serde_json::from_str(r#""x-custom""#).unwrap();
/// assert_eq!(t, ResultType::Other("x-custom".into()));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResultType {
    /// `"complete"`: the final result of the request.
    #[default]
    Complete,
    /// `"input_required"`: an [`InputRequiredResult`].
    InputRequired,
    /// `"task"`: a task handle from the tasks extension.
    Task,
    /// Any other value, advertised by an extension.
    Other(String),
}

impl ResultType {
    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Complete => "complete",
            Self::InputRequired => "input_required",
            Self::Task => "task",
            Self::Other(s) => s,
        }
    }
}

impl From<&str> for ResultType {
    fn from(value: &str) -> Self {
        match value {
            "complete" => Self::Complete,
            "input_required" => Self::InputRequired,
            "task" => Self::Task,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ResultType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResultType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(Self::from(s.as_str()))
    }
}

/// A request the server needs the client to fulfil, tagged by `method`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method")]
pub enum InputRequest {
    /// `"elicitation/create"`: ask the user.
    #[serde(rename = "elicitation/create")]
    Elicitation {
        /// The elicitation.
        params: ElicitRequestParams,
    },
    /// `"sampling/createMessage"`: ask the model.
    #[serde(rename = "sampling/createMessage")]
    Sampling {
        /// The sampling request.
        params: CreateMessageRequestParams,
    },
    /// `"roots/list"`: ask for the client's roots.
    #[serde(rename = "roots/list")]
    ListRoots {
        /// Params, normally absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        params: Option<JsonObject>,
    },
}

impl InputRequest {
    /// An elicitation request.
    pub fn elicit(params: ElicitRequestParams) -> Self {
        Self::Elicitation { params }
    }

    /// A sampling request.
    pub fn sample(params: CreateMessageRequestParams) -> Self {
        Self::Sampling { params }
    }

    /// A roots request.
    pub fn list_roots() -> Self {
        Self::ListRoots { params: None }
    }

    /// The method name.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Elicitation { .. } => super::methods::ELICITATION_CREATE,
            Self::Sampling { .. } => super::methods::SAMPLING_CREATE_MESSAGE,
            Self::ListRoots { .. } => super::methods::ROOTS_LIST,
        }
    }
}

/// Input requests by server-chosen key.
pub type InputRequests = BTreeMap<String, InputRequest>;

/// The client's answers by the keys of [`InputRequests`]: each value is an
/// `ElicitResult`, `CreateMessageResult` or `ListRootsResult`.
pub type InputResponses = JsonObject;

/// Reads the answer stored under `key` as `T`: `None` when there is none,
/// `Some(Err(_))` when it has the wrong shape.
///
/// ```
/// use mcp_core::types::{input_response, ElicitAction, ElicitResult, InputResponses};
/// let responses: InputResponses = serde_json::from_str(r#"{"confirm":{"action":"accept"}}"#).unwrap();
/// let answer: ElicitResult = input_response(&responses, "confirm").unwrap().unwrap();
/// assert_eq!(answer.action, ElicitAction::Accept);
/// assert!(input_response::<ElicitResult>(&responses, "other").is_none());
/// ```
pub fn input_response<T: DeserializeOwned>(
    responses: &InputResponses,
    key: &str,
) -> Option<Result<T, serde_json::Error>> {
    responses.get(key).map(|v| T::deserialize(v))
}

/// The answer "more input is needed" to `tools/call`, `prompts/get` or
/// `resources/read` (2026-07-28). It carries `inputRequests`, `requestState`, or both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputRequiredResult {
    /// Always `"input_required"`.
    #[serde(default = "input_required")]
    pub result_type: ResultType,
    /// What the client must fulfil before retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_requests: Option<InputRequests>,
    /// Opaque state the client echoes back unchanged on the retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_state: Option<String>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

fn input_required() -> ResultType {
    ResultType::InputRequired
}

impl Default for InputRequiredResult {
    fn default() -> Self {
        Self { result_type: ResultType::InputRequired, input_requests: None, request_state: None, meta: None }
    }
}

impl InputRequiredResult {
    /// An empty `input_required` result; add requests or state to it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an input request under `key`.
    #[must_use]
    pub fn with_input_request(mut self, key: impl Into<String>, request: InputRequest) -> Self {
        self.input_requests.get_or_insert_with(BTreeMap::new).insert(key.into(), request);
        self
    }

    /// Sets the state the client must echo back.
    #[must_use]
    pub fn with_request_state(mut self, state: impl Into<String>) -> Self {
        self.request_state = Some(state.into());
        self
    }
}
