//! Prompts: templates the client can fill in and show to a model.
//!
//! ```
//! use mcp_server::{prompt, Server};
//!
//! /// Asks for a haiku.
//! #[prompt]
//! async fn haiku(topic: String) -> String {
//!     format!("Write a haiku about {topic}.")
//! }
//!
//! let server = Server::new("demo", "1.0.0").prompt(haiku);
//! assert_eq!(server.prompt_names(), ["haiku"]);
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use mcp_core::McpError;
use mcp_core::types::{GetPromptResult, Icon, Prompt, PromptArgument, PromptMessage};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::BoxFuture;
use crate::context::Context;

/// One `prompts/get`, handed to the prompt's handler.
#[derive(Debug)]
pub struct PromptCall {
    pub(crate) arguments: BTreeMap<String, String>,
    pub(crate) context: Context,
}

impl PromptCall {
    /// The arguments as sent.
    pub fn arguments(&self) -> &BTreeMap<String, String> {
        &self.arguments
    }

    /// The request context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The arguments as `T`; a missing required argument is `-32602`.
    pub fn parse_arguments<T: DeserializeOwned>(&self) -> Result<T, McpError> {
        let map = self.arguments.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        serde_json::from_value(Value::Object(map)).map_err(|e| McpError::invalid_params(e.to_string()))
    }
}

type PromptFn = dyn Fn(PromptCall) -> BoxFuture<'static, Result<GetPromptResult, McpError>> + Send + Sync;

/// A prompt ready to be served.
#[derive(Clone)]
pub struct PromptRoute {
    pub(crate) definition: Prompt,
    pub(crate) scopes: Vec<String>,
    handler: Arc<PromptFn>,
}

impl std::fmt::Debug for PromptRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptRoute").field("definition", &self.definition).finish()
    }
}

impl PromptRoute {
    /// A prompt from a name and a handler.
    ///
    /// ```
    /// use mcp_server::prompt::{PromptCall, PromptRoute};
    /// let route = PromptRoute::new("hello", |_call: PromptCall| async { "Say hello." });
    /// assert_eq!(route.definition().name, "hello");
    /// ```
    pub fn new<F, Fut, R>(name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(PromptCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoGetPromptResult,
    {
        Self {
            definition: Prompt { name: name.into(), ..Prompt::default() },
            scopes: Vec::new(),
            handler: Arc::new(move |call| {
                let fut = handler(call);
                Box::pin(async move { fut.await.into_get_prompt_result() })
            }),
        }
    }

    /// A prompt served exactly as `definition` describes it (a prompt
    /// mirrored from another server, say), its handler's result sent as is.
    ///
    /// ```
    /// use mcp_server::prompt::PromptRoute;
    /// use mcp_core::types::{GetPromptResult, Prompt};
    ///
    /// let definition = Prompt { name: "greet".into(), ..Prompt::default() };
    /// let route = PromptRoute::from_definition(definition, |_call| {
    ///     Box::pin(async { Ok(GetPromptResult::default()) })
    /// });
    /// assert_eq!(route.definition().name, "greet");
    /// ```
    pub fn from_definition<F>(definition: Prompt, handler: F) -> Self
    where
        F: Fn(PromptCall) -> BoxFuture<'static, Result<GetPromptResult, McpError>> + Send + Sync + 'static,
    {
        Self { definition, scopes: Vec::new(), handler: Arc::new(handler) }
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.definition.description = Some(description.into());
        self
    }

    /// Sets the title.
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.definition.title = Some(title.into());
        self
    }

    /// Sets icons.
    #[must_use]
    pub fn icons(mut self, icons: Vec<Icon>) -> Self {
        self.definition.icons = Some(icons);
        self
    }

    /// Declares an argument.
    #[must_use]
    pub fn argument(mut self, name: impl Into<String>, description: Option<&str>, required: bool) -> Self {
        let argument = PromptArgument {
            name: name.into(),
            description: description.map(str::to_owned),
            required: Some(required),
            ..PromptArgument::default()
        };
        self.definition.arguments.get_or_insert_with(Vec::new).push(argument);
        self
    }

    /// Requires these OAuth scopes.
    #[must_use]
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The definition shown by `prompts/list`.
    pub fn definition(&self) -> &Prompt {
        &self.definition
    }

    pub(crate) async fn get(
        &self,
        arguments: BTreeMap<String, String>,
        context: Context,
    ) -> Result<GetPromptResult, McpError> {
        for argument in self.definition.arguments.iter().flatten() {
            if argument.required == Some(true) && !arguments.contains_key(&argument.name) {
                return Err(McpError::invalid_params(format!(
                    "missing required argument {:?}",
                    argument.name
                )));
            }
        }
        (self.handler)(PromptCall { arguments, context }).await
    }
}

/// Converts into a [`PromptRoute`]. Implemented by every `#[prompt]` function.
pub trait IntoPromptRoute {
    /// Builds the route.
    fn into_prompt_route(self) -> PromptRoute;
}

impl IntoPromptRoute for PromptRoute {
    fn into_prompt_route(self) -> PromptRoute {
        self
    }
}

/// What a prompt handler may return.
pub trait IntoGetPromptResult {
    /// Performs the conversion.
    fn into_get_prompt_result(self) -> Result<GetPromptResult, McpError>;
}

impl IntoGetPromptResult for GetPromptResult {
    fn into_get_prompt_result(self) -> Result<GetPromptResult, McpError> {
        Ok(self)
    }
}
impl IntoGetPromptResult for Vec<PromptMessage> {
    fn into_get_prompt_result(self) -> Result<GetPromptResult, McpError> {
        Ok(GetPromptResult { messages: self, ..GetPromptResult::default() })
    }
}
impl IntoGetPromptResult for PromptMessage {
    fn into_get_prompt_result(self) -> Result<GetPromptResult, McpError> {
        vec![self].into_get_prompt_result()
    }
}
impl IntoGetPromptResult for String {
    fn into_get_prompt_result(self) -> Result<GetPromptResult, McpError> {
        PromptMessage::user_text(self).into_get_prompt_result()
    }
}
impl IntoGetPromptResult for &'static str {
    fn into_get_prompt_result(self) -> Result<GetPromptResult, McpError> {
        self.to_owned().into_get_prompt_result()
    }
}
impl<T: IntoGetPromptResult, E: Into<McpError>> IntoGetPromptResult for Result<T, E> {
    fn into_get_prompt_result(self) -> Result<GetPromptResult, McpError> {
        self.map_err(Into::into)?.into_get_prompt_result()
    }
}
