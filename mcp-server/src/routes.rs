//! Collections of routes, as produced by the `#[router]` attribute.

use crate::prompt::PromptRoute;
use crate::resource::ResourceRoute;
use crate::tool::ToolRoute;

/// Tools, prompts and resources to add to a server together.
///
/// ```
/// use mcp_server::{router, Server};
///
/// #[derive(Clone, Default)]
/// struct Counter;
///
/// #[router]
/// impl Counter {
///     /// Counts letters.
///     #[tool]
///     async fn count(&self, text: String) -> usize {
///         text.chars().count()
///     }
/// }
///
/// let server = Server::new("demo", "1.0.0").routes(Counter);
/// assert_eq!(server.tool_names(), ["count"]);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Routes {
    /// The tools.
    pub tools: Vec<ToolRoute>,
    /// The prompts.
    pub prompts: Vec<PromptRoute>,
    /// The resources and resource templates.
    pub resources: Vec<ResourceRoute>,
}

/// Converts into [`Routes`]. Implemented by `#[router]` types and by every
/// single tool, prompt or resource.
pub trait IntoRoutes {
    /// Builds the routes.
    fn into_routes(self) -> Routes;
}

impl IntoRoutes for Routes {
    fn into_routes(self) -> Routes {
        self
    }
}
