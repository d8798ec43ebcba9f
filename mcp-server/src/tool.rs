//! Tools: their definitions, handlers, and how return values become results.
//!
//! Most tools are declared with the [`tool`](crate::tool) attribute. A tool can
//! also be built at run time from a JSON Schema and a closure:
//!
//! ```
//! use mcp_server::tool::{ToolCall, ToolRoute};
//! use mcp_core::types::CallToolResult;
//!
//! let schema = serde_json::json!({"type": "object", "properties": {"q": {"type": "string"}}});
//! let route = ToolRoute::new("search", schema.as_object().unwrap().clone(), |call: ToolCall| async move {
//!     let q = call.arguments().get("q").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
//!     CallToolResult::text(format!("searched for {q}"))
//! })
//! .description("Searches.");
//! assert_eq!(route.definition().name, "search");
//! ```

use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use mcp_core::McpError;
use mcp_core::types::{CallToolResult, ContentBlock, Icon, JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::BoxFuture;
use crate::context::Context;
use crate::schema::{self, ArgumentValidator, HeaderParam};

/// One call of a tool, handed to its handler.
#[derive(Debug)]
pub struct ToolCall {
    pub(crate) arguments: JsonObject,
    pub(crate) context: Context,
}

impl ToolCall {
    /// The arguments, already validated against the input schema.
    pub fn arguments(&self) -> &JsonObject {
        &self.arguments
    }

    /// The request context: progress, logging, cancellation, asking the client.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The arguments and the context, taken apart: for a handler that passes
    /// the arguments on (to another server, say) without copying them.
    pub fn into_parts(self) -> (JsonObject, Context) {
        (self.arguments, self.context)
    }

    /// Deserializes the arguments into `T`; a failure becomes an `isError` result.
    pub fn parse_arguments<T: DeserializeOwned>(&self) -> Result<T, ToolOutput> {
        // Straight from the map: no copy of the arguments.
        T::deserialize(&self.arguments).map_err(|e| ToolOutput::Failed(format!("Invalid arguments: {e}")))
    }
}

/// What a tool handler produced, before the runtime shapes it for the wire.
#[derive(Debug)]
#[non_exhaustive]
pub enum ToolOutput {
    /// A finished result.
    Result(CallToolResult),
    /// A typed value for `structuredContent`, matching the tool's output schema.
    Structured(Value),
    /// The tool failed: an `isError` result carrying this message.
    Failed(String),
    /// The request itself failed: a JSON-RPC error instead of a result
    /// (for a tool that forwards calls, an upstream that died or timed out).
    Error(McpError),
    /// A finished result already in JSON (a `CallToolResult` object), sent on
    /// as it is: for a tool that forwards calls, so that fields and content
    /// types this crate does not model reach the client unchanged. Only
    /// `structuredContent` is left out for clients older than 2025-06-18.
    ///
    /// ```
    /// use mcp_server::tool::ToolOutput;
    /// let answer = serde_json::json!({"content": [{"type": "text", "text": "from upstream"}]});
    /// let output = ToolOutput::Json(answer.as_object().cloned().unwrap_or_default());
    /// assert!(matches!(output, ToolOutput::Json(result) if result.contains_key("content")));
    /// ```
    Json(JsonObject),
}

/// A tool's result as the runtime sends it on.
#[derive(Debug)]
pub(crate) enum ToolResult {
    /// To be serialized.
    Typed(CallToolResult),
    /// Already JSON ([`ToolOutput::Json`]).
    Json(JsonObject),
}

impl ToolResult {
    /// The result as a JSON value, without `structuredContent` unless
    /// `structured` (it arrived in 2025-06-18).
    pub(crate) fn into_value(self, structured: bool) -> Result<Value, serde_json::Error> {
        match self {
            Self::Typed(mut result) => {
                if !structured {
                    result.structured_content = None;
                }
                serde_json::to_value(&result)
            }
            Self::Json(mut result) => {
                if !structured {
                    result.remove("structuredContent");
                }
                Ok(Value::Object(result))
            }
        }
    }
}

type ToolFn = dyn Fn(ToolCall) -> BoxFuture<'static, ToolOutput> + Send + Sync;

/// A tool ready to be served: its definition, required scopes and handler.
#[derive(Clone)]
pub struct ToolRoute {
    pub(crate) definition: Tool,
    pub(crate) scopes: Vec<String>,
    /// `true` when the output schema was wrapped as `{"result": …}` because the
    /// return type is not an object.
    wraps_output: bool,
    handler: Arc<ToolFn>,
    validator: Arc<OnceLock<ArgumentValidator>>,
    header_params: Arc<OnceLock<Vec<HeaderParam>>>,
    /// The `tools/list` entry, built once: without and with the output schema.
    listings: Arc<OnceLock<[Value; 2]>>,
}

impl std::fmt::Debug for ToolRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRoute")
            .field("definition", &self.definition)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl ToolRoute {
    /// A tool with an explicit input schema and a handler returning anything
    /// that converts into a result.
    pub fn new<F, Fut, R>(name: impl Into<String>, input_schema: JsonObject, handler: F) -> Self
    where
        F: Fn(ToolCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoCallToolResult,
    {
        Self::from_output_fn(name, input_schema, move |call| {
            let fut = handler(call);
            Box::pin(async move { ToolOutput::Result(fut.await.into_call_tool_result()) })
        })
    }

    /// A tool whose handler already yields a [`ToolOutput`]. The macros use this.
    pub fn from_output_fn<F>(name: impl Into<String>, input_schema: JsonObject, handler: F) -> Self
    where
        F: Fn(ToolCall) -> BoxFuture<'static, ToolOutput> + Send + Sync + 'static,
    {
        Self {
            definition: Tool { name: name.into(), input_schema, ..Tool::default() },
            scopes: Vec::new(),
            wraps_output: false,
            handler: Arc::new(handler),
            validator: Arc::new(OnceLock::new()),
            header_params: Arc::new(OnceLock::new()),
            listings: Arc::new(OnceLock::new()),
        }
    }

    /// A tool served exactly as `definition` describes it, schemas,
    /// annotations and metadata verbatim: a tool mirrored from another
    /// server, say. The handler's [`ToolOutput::Result`] is sent as is.
    ///
    /// ```
    /// use mcp_server::tool::{ToolOutput, ToolRoute};
    /// use mcp_core::types::{CallToolResult, Tool};
    ///
    /// let definition: Tool = serde_json::from_value(serde_json::json!({
    ///     "name": "echo",
    ///     "inputSchema": {"type": "object"},
    ///     "outputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    /// })).unwrap();
    /// let route = ToolRoute::from_definition(definition, |_call| {
    ///     Box::pin(async { ToolOutput::Result(CallToolResult::text("hi")) })
    /// });
    /// assert!(route.definition().output_schema.is_some());
    /// ```
    pub fn from_definition<F>(definition: Tool, handler: F) -> Self
    where
        F: Fn(ToolCall) -> BoxFuture<'static, ToolOutput> + Send + Sync + 'static,
    {
        let mut route = Self::from_output_fn(definition.name.clone(), JsonObject::new(), handler);
        route.definition = definition;
        route
    }

    /// The input schema generated from an arguments type.
    pub fn input_schema_for<A: JsonSchema>() -> JsonObject {
        schema::input_schema_for::<A>()
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.definition_mut().description = Some(description.into());
        self
    }

    /// Sets the human-readable title.
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.definition_mut().title = Some(title.into());
        self
    }

    /// Sets behaviour hints.
    #[must_use]
    pub fn annotations(mut self, annotations: ToolAnnotations) -> Self {
        self.definition_mut().annotations = Some(annotations);
        self
    }

    /// Sets icons.
    #[must_use]
    pub fn icons(mut self, icons: Vec<Icon>) -> Self {
        self.definition_mut().icons = Some(icons);
        self
    }

    /// Requires these OAuth scopes for calling (and listing) the tool.
    #[must_use]
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Declares the output schema from a type's JSON Schema. A non-object type
    /// is wrapped as `{"result": …}`, and so are the values the tool returns.
    #[must_use]
    pub fn output_schema(mut self, type_schema: Option<JsonObject>) -> Self {
        match type_schema.map(schema::object_output_schema) {
            Some((schema, wrapped)) => {
                self.definition_mut().output_schema = Some(schema);
                self.wraps_output = wrapped;
            }
            None => {
                self.definition_mut().output_schema = None;
                self.wraps_output = false;
            }
        }
        self
    }

    /// The definition, to change: a changed definition is listed anew.
    fn definition_mut(&mut self) -> &mut Tool {
        self.listings = Arc::new(OnceLock::new());
        &mut self.definition
    }

    /// The `tools/list` entry as JSON; `structured` (2025-06-18 and later)
    /// keeps the output schema.
    pub(crate) fn listing(&self, structured: bool) -> &Value {
        let [plain, full] = self.listings.get_or_init(|| {
            let full = serde_json::to_value(&self.definition).unwrap_or_default();
            let mut plain = full.clone();
            if let Value::Object(entry) = &mut plain {
                entry.remove("outputSchema"); // Structured output arrived in 2025-06-18.
            }
            [plain, full]
        });
        if structured { full } else { plain }
    }

    /// The definition shown by `tools/list`.
    pub fn definition(&self) -> &Tool {
        &self.definition
    }

    /// The arguments mirrored in `Mcp-Param-*` headers.
    pub(crate) fn header_params(&self) -> &[HeaderParam] {
        self.header_params.get_or_init(|| schema::header_params(&self.definition.input_schema))
    }

    /// The scopes a caller needs.
    pub fn required_scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Validates the arguments (a JSON object), runs the handler, and shapes
    /// the result; `Err` for [`ToolOutput::Error`].
    pub(crate) async fn call(&self, arguments: Value, context: Context) -> Result<ToolResult, McpError> {
        let validator = self.validator.get_or_init(|| ArgumentValidator::new(&self.definition.input_schema));
        if let Err(message) = validator.validate(&arguments) {
            return Ok(ToolResult::Typed(CallToolResult::error(message)));
        }
        let Value::Object(arguments) = arguments else {
            return Ok(ToolResult::Typed(CallToolResult::error(
                "Invalid arguments: not an object".to_owned(),
            )));
        };
        let output = (self.handler)(ToolCall { arguments, context }).await;
        self.shape(output)
    }

    fn shape(&self, output: ToolOutput) -> Result<ToolResult, McpError> {
        Ok(ToolResult::Typed(match output {
            ToolOutput::Result(result) => result,
            ToolOutput::Json(result) => return Ok(ToolResult::Json(result)),
            ToolOutput::Failed(message) => CallToolResult::error(message),
            ToolOutput::Error(error) => return Err(error),
            ToolOutput::Structured(value) => {
                let text = value.to_string();
                let structured = if self.wraps_output {
                    let mut map = JsonObject::new();
                    map.insert("result".into(), value);
                    Value::Object(map)
                } else {
                    value
                };
                CallToolResult {
                    content: vec![ContentBlock::text(text)],
                    structured_content: Some(structured),
                    ..CallToolResult::default()
                }
            }
        }))
    }
}

/// Converts into a [`ToolRoute`]. Implemented by every `#[tool]` function.
pub trait IntoToolRoute {
    /// Builds the route.
    fn into_tool_route(self) -> ToolRoute;
}

impl IntoToolRoute for ToolRoute {
    fn into_tool_route(self) -> ToolRoute {
        self
    }
}

/// Values that are a tool result by themselves, with no structured output:
/// text, content blocks, a whole [`CallToolResult`], `()`, and `Result`s of these
/// whose error becomes an `isError` result.
///
/// ```
/// use mcp_server::tool::IntoCallToolResult;
/// let r = Err::<String, _>("disk full").into_call_tool_result();
/// assert_eq!(r.is_error, Some(true));
/// ```
pub trait IntoCallToolResult {
    /// Performs the conversion.
    fn into_call_tool_result(self) -> CallToolResult;
}

impl IntoCallToolResult for CallToolResult {
    fn into_call_tool_result(self) -> CallToolResult {
        self
    }
}
impl IntoCallToolResult for String {
    fn into_call_tool_result(self) -> CallToolResult {
        CallToolResult::text(self)
    }
}
impl IntoCallToolResult for &'static str {
    fn into_call_tool_result(self) -> CallToolResult {
        CallToolResult::text(self)
    }
}
impl IntoCallToolResult for ContentBlock {
    fn into_call_tool_result(self) -> CallToolResult {
        CallToolResult::new(vec![self])
    }
}
impl IntoCallToolResult for Vec<ContentBlock> {
    fn into_call_tool_result(self) -> CallToolResult {
        CallToolResult::new(self)
    }
}
impl IntoCallToolResult for () {
    fn into_call_tool_result(self) -> CallToolResult {
        CallToolResult::new(Vec::new())
    }
}
impl<T: IntoCallToolResult, E: Display> IntoCallToolResult for Result<T, E> {
    fn into_call_tool_result(self) -> CallToolResult {
        match self {
            Ok(value) => value.into_call_tool_result(),
            Err(error) => CallToolResult::error(error.to_string()),
        }
    }
}

/// Chooses, at compile time, how a `#[tool]` function's return type becomes a
/// result: as plain content (see [`IntoCallToolResult`]) or as structured
/// output with an `outputSchema`. Used by the macros through auto-ref
/// resolution: `(&&&OutputKind::<R>::new()).tool_output(value)`.
#[derive(Debug)]
pub struct OutputKind<T>(PhantomData<fn() -> T>);

impl<T> OutputKind<T> {
    /// The selector for return type `T`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

/// Highest priority: the value is a result by itself.
pub trait ContentOutput {
    /// The return type.
    type Value;
    /// No output schema.
    fn output_type_schema(&self) -> Option<JsonObject> {
        None
    }
    /// Converts the value.
    fn tool_output(&self, value: Self::Value) -> ToolOutput;
}

impl<T: IntoCallToolResult> ContentOutput for &&&OutputKind<T> {
    type Value = T;
    fn tool_output(&self, value: T) -> ToolOutput {
        ToolOutput::Result(value.into_call_tool_result())
    }
}

/// Second: `Result<T, E>` with a structured `T`; `Err` becomes `isError`.
pub trait FallibleStructuredOutput {
    /// The return type.
    type Value;
    /// The schema of the success type.
    fn output_type_schema(&self) -> Option<JsonObject>;
    /// Converts the value.
    fn tool_output(&self, value: Self::Value) -> ToolOutput;
}

impl<T: Serialize + JsonSchema, E: Display> FallibleStructuredOutput for &&OutputKind<Result<T, E>> {
    type Value = Result<T, E>;
    fn output_type_schema(&self) -> Option<JsonObject> {
        Some(schema::type_schema_for::<T>())
    }
    fn tool_output(&self, value: Result<T, E>) -> ToolOutput {
        match value {
            Ok(v) => structured(&v),
            Err(e) => ToolOutput::Failed(e.to_string()),
        }
    }
}

/// Last: any serializable type with a schema becomes structured output.
pub trait StructuredOutput {
    /// The return type.
    type Value;
    /// The schema of the type.
    fn output_type_schema(&self) -> Option<JsonObject>;
    /// Converts the value.
    fn tool_output(&self, value: Self::Value) -> ToolOutput;
}

impl<T: Serialize + JsonSchema> StructuredOutput for &OutputKind<T> {
    type Value = T;
    fn output_type_schema(&self) -> Option<JsonObject> {
        Some(schema::type_schema_for::<T>())
    }
    fn tool_output(&self, value: T) -> ToolOutput {
        structured(&value)
    }
}

fn structured<T: Serialize>(value: &T) -> ToolOutput {
    match serde_json::to_value(value) {
        Ok(v) => ToolOutput::Structured(v),
        Err(e) => ToolOutput::Failed(format!("the tool's output could not be serialized: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> ToolRoute {
        ToolRoute::new("add", JsonObject::new(), |_call: ToolCall| async { "ok" })
    }

    #[test]
    fn listing_follows_the_era_and_later_changes() {
        let schema = serde_json::json!({"type": "object"}).as_object().cloned();
        let tool = route().description("adds").output_schema(schema);
        assert!(tool.listing(true).get("outputSchema").is_some());
        assert!(tool.listing(false).get("outputSchema").is_none(), "no structured output before 2025-06-18");
        assert_eq!(tool.listing(false)["description"], "adds");
        // A change after the entry was built shows in the next listing.
        let tool = tool.title("Add");
        assert_eq!(tool.listing(true)["title"], "Add");
        assert_eq!(tool.listing(true)["description"], "adds");
    }
}
