//! The [`Server`]: what it serves, and how it is configured.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use mcp_core::McpError;
use mcp_core::types::{
    CompleteRequestParams, Completion, Implementation, PromptsCapability, ResourcesCapability,
    ServerCapabilities, ToolsCapability,
};
use tokio::sync::broadcast;

use crate::BoxFuture;
use crate::changes::ChangeFeed;
use crate::context::Context;
use crate::mrtr::RequestStateKey;
use crate::prompt::{IntoPromptRoute, PromptRoute};
use crate::registry::Catalog;
use crate::resource::{IntoResourceRoute, ResourceRoute};
use crate::routes::{IntoRoutes, Routes};
use crate::tool::{IntoToolRoute, ToolRoute};

/// A change clients may want to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The set of tools changed.
    Tools,
    /// The set of prompts changed.
    Prompts,
    /// The set of resources or templates changed.
    Resources,
    /// The contents of one resource changed.
    ResourceUpdated(String),
}

type CompletionFn =
    dyn Fn(CompleteRequestParams, Context) -> BoxFuture<'static, Result<Completion, McpError>> + Send + Sync;

#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) tools: Catalog<ToolRoute>,
    pub(crate) prompts: Catalog<PromptRoute>,
    pub(crate) resources: Catalog<ResourceRoute>,
    pub(crate) templates: Catalog<ResourceRoute>,
}

/// Settings that rarely change after start.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) info: Arc<Implementation>,
    /// `info` as JSON, added to every modern result: serialized once, not per request.
    pub(crate) info_json: Arc<serde_json::Value>,
    pub(crate) instructions: Option<String>,
    pub(crate) page_size: usize,
    pub(crate) cache_ttl: Duration,
    pub(crate) request_state_key: RequestStateKey,
    pub(crate) request_state_ttl: Duration,
}

/// Makes a route for a tool name that is not registered, or declines.
type UnknownToolFn = dyn Fn(&str) -> Option<ToolRoute> + Send + Sync;

/// Told the URI of each new resource subscription.
type SubscribedFn = dyn Fn(&str) + Send + Sync;

struct Inner {
    settings: RwLock<Arc<Settings>>,
    registry: RwLock<Registry>,
    states: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    completion: RwLock<Option<Arc<CompletionFn>>>,
    unknown_tools: RwLock<Option<Arc<UnknownToolFn>>>,
    on_subscribe: RwLock<Option<Arc<SubscribedFn>>>,
    changes: broadcast::Sender<Change>,
}

/// An MCP server: its tools, prompts and resources, and its settings.
///
/// Cheap to clone; every clone is the same server. Tools, prompts and
/// resources can be added and removed while it runs; connected clients are
/// told with `list_changed` notifications.
///
/// ```
/// use mcp_server::{tool, Server};
///
/// /// Adds two numbers.
/// #[tool]
/// async fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// let server = Server::new("calculator", "1.0.0").instructions("Use add to add.").tool(add);
/// assert_eq!(server.tool_names(), ["add"]);
/// assert!(server.remove_tool("add"));
/// assert!(server.tool_names().is_empty());
/// ```
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("info", &self.settings().info).finish_non_exhaustive()
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Default number of entries per page of a list.
pub const DEFAULT_PAGE_SIZE: usize = 100;

impl Server {
    /// A server with a name and version (its `serverInfo`) and nothing to serve yet.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        let info = Implementation::new(name, version);
        let settings = Settings {
            info_json: Arc::new(serde_json::to_value(&info).unwrap_or_default()),
            info: Arc::new(info),
            instructions: None,
            page_size: DEFAULT_PAGE_SIZE,
            cache_ttl: Duration::ZERO,
            request_state_key: RequestStateKey::random(),
            request_state_ttl: Duration::from_secs(600),
        };
        let (changes, _) = broadcast::channel(64);
        Self {
            inner: Arc::new(Inner {
                settings: RwLock::new(Arc::new(settings)),
                registry: RwLock::new(Registry::default()),
                states: RwLock::new(HashMap::new()),
                completion: RwLock::new(None),
                unknown_tools: RwLock::new(None),
                on_subscribe: RwLock::new(None),
                changes,
            }),
        }
    }

    pub(crate) fn settings(&self) -> Arc<Settings> {
        read(&self.inner.settings).clone()
    }

    fn update_settings(self, change: impl FnOnce(&mut Settings)) -> Self {
        {
            let mut guard = write(&self.inner.settings);
            let mut settings = (**guard).clone();
            change(&mut settings);
            settings.info_json = Arc::new(serde_json::to_value(&*settings.info).unwrap_or_default());
            *guard = Arc::new(settings);
        }
        self
    }

    /// Sets the human-readable title in `serverInfo`.
    #[must_use]
    pub fn title(self, title: impl Into<String>) -> Self {
        let title = title.into();
        self.update_settings(|s| Arc::make_mut(&mut s.info).title = Some(title))
    }

    /// Sets instructions for the model, sent at `initialize` and `server/discover`.
    #[must_use]
    pub fn instructions(self, instructions: impl Into<String>) -> Self {
        let instructions = instructions.into();
        self.update_settings(|s| s.instructions = Some(instructions))
    }

    /// Sets how many entries a list page holds (at least 1).
    #[must_use]
    pub fn page_size(self, size: usize) -> Self {
        self.update_settings(|s| s.page_size = size.max(1))
    }

    /// Sets the `ttlMs` advertised on cacheable results (2026-07-28). Zero by default.
    #[must_use]
    pub fn cache_ttl(self, ttl: Duration) -> Self {
        self.update_settings(|s| s.cache_ttl = ttl)
    }

    /// Sets the key that seals multi round-trip `requestState`. Give every
    /// instance behind one load balancer the same key.
    #[must_use]
    pub fn request_state_key(self, key: RequestStateKey) -> Self {
        self.update_settings(|s| s.request_state_key = key)
    }

    /// Registers shared state, available to handlers as [`State<T>`](crate::State).
    #[must_use]
    pub fn state<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.insert_state(value);
        self
    }

    /// Registers shared state on a built server (an auth mode adds its own).
    pub(crate) fn insert_state<T: Send + Sync + 'static>(&self, value: T) {
        write(&self.inner.states).insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// Adds a tool (builder style).
    #[must_use]
    pub fn tool(self, tool: impl IntoToolRoute) -> Self {
        self.add_tool(tool);
        self
    }

    /// Adds a prompt (builder style).
    #[must_use]
    pub fn prompt(self, prompt: impl IntoPromptRoute) -> Self {
        self.add_prompt(prompt);
        self
    }

    /// Adds a resource or resource template (builder style).
    #[must_use]
    pub fn resource(self, resource: impl IntoResourceRoute) -> Self {
        self.add_resource(resource);
        self
    }

    /// Adds everything a `#[router]` type declares (builder style).
    #[must_use]
    pub fn routes(self, routes: impl IntoRoutes) -> Self {
        self.add_routes(routes);
        self
    }

    /// Sets the handler for `completion/complete`. Without one, every
    /// completion request gets an empty list.
    #[must_use]
    pub fn completion<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(CompleteRequestParams, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Completion, McpError>> + Send + 'static,
    {
        *write(&self.inner.completion) = Some(Arc::new(move |p, c| Box::pin(handler(p, c))));
        self
    }

    /// Adds or replaces a tool while running.
    pub fn add_tool(&self, tool: impl IntoToolRoute) {
        let route = tool.into_tool_route();
        let key = route.definition.name.clone();
        write(&self.inner.registry).tools.insert(key, route);
        self.announce(Change::Tools);
    }

    /// Removes a tool; `false` when there was none by that name.
    pub fn remove_tool(&self, name: &str) -> bool {
        let removed = write(&self.inner.registry).tools.remove(name);
        if removed {
            self.announce(Change::Tools);
        }
        removed
    }

    /// Adds or replaces a prompt while running.
    pub fn add_prompt(&self, prompt: impl IntoPromptRoute) {
        let route = prompt.into_prompt_route();
        let key = route.definition.name.clone();
        write(&self.inner.registry).prompts.insert(key, route);
        self.announce(Change::Prompts);
    }

    /// Removes a prompt; `false` when there was none by that name.
    pub fn remove_prompt(&self, name: &str) -> bool {
        let removed = write(&self.inner.registry).prompts.remove(name);
        if removed {
            self.announce(Change::Prompts);
        }
        removed
    }

    /// Adds or replaces a resource or template while running.
    pub fn add_resource(&self, resource: impl IntoResourceRoute) {
        let route = resource.into_resource_route();
        let key = route.key().to_owned();
        {
            let mut registry = write(&self.inner.registry);
            if route.template().is_some() {
                registry.templates.insert(key, route);
            } else {
                registry.resources.insert(key, route);
            }
        }
        self.announce(Change::Resources);
    }

    /// Removes a resource (by URI) or template (by its template string).
    pub fn remove_resource(&self, uri_or_template: &str) -> bool {
        let removed = {
            let mut registry = write(&self.inner.registry);
            registry.resources.remove(uri_or_template) || registry.templates.remove(uri_or_template)
        };
        if removed {
            self.announce(Change::Resources);
        }
        removed
    }

    /// Adds everything in `routes` while running.
    pub fn add_routes(&self, routes: impl IntoRoutes) {
        let Routes { tools, prompts, resources } = routes.into_routes();
        tools.into_iter().for_each(|t| self.add_tool(t));
        prompts.into_iter().for_each(|p| self.add_prompt(p));
        resources.into_iter().for_each(|r| self.add_resource(r));
    }

    /// Tells subscribed clients that a resource's contents changed.
    pub fn notify_resource_updated(&self, uri: impl Into<String>) {
        self.announce(Change::ResourceUpdated(uri.into()));
    }

    fn announce(&self, change: Change) {
        // No receivers simply means no client is connected.
        let _ = self.inner.changes.send(change);
    }

    /// Changes as they happen, for transports that forward them to clients.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }

    /// [`subscribe_changes`](Self::subscribe_changes) as a [`ChangeFeed`].
    pub(crate) fn change_feed(&self) -> ChangeFeed {
        ChangeFeed::new(self.subscribe_changes())
    }

    /// The names of the tools, in list order.
    pub fn tool_names(&self) -> Vec<String> {
        read(&self.inner.registry).tools.iter().map(|t| t.definition.name.clone()).collect()
    }

    /// The names of the prompts, in list order.
    pub fn prompt_names(&self) -> Vec<String> {
        read(&self.inner.registry).prompts.iter().map(|p| p.definition.name.clone()).collect()
    }

    /// The URIs of the fixed resources, in list order.
    pub fn resource_uris(&self) -> Vec<String> {
        read(&self.inner.registry).resources.iter().map(|r| r.key().to_owned()).collect()
    }

    pub(crate) fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        read(&self.inner.registry)
    }

    pub(crate) fn shared_state<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let any = read(&self.inner.states).get(&TypeId::of::<T>())?.clone();
        any.downcast::<T>().ok()
    }

    pub(crate) fn completion_handler(&self) -> Option<Arc<CompletionFn>> {
        read(&self.inner.completion).clone()
    }

    /// The capabilities this server declares.
    pub fn capabilities(&self) -> ServerCapabilities {
        ServerCapabilities {
            tools: Some(ToolsCapability { list_changed: Some(true) }),
            prompts: Some(PromptsCapability { list_changed: Some(true) }),
            resources: Some(ResourcesCapability { subscribe: Some(true), list_changed: Some(true) }),
            logging: Some(Default::default()),
            completions: Some(Default::default()),
            ..ServerCapabilities::default()
        }
    }

    /// Every scope some tool, prompt or resource requires, sorted, without
    /// duplicates (`offline_access` never appears: it is not a resource scope).
    /// The auth layer advertises these when no `scopes_supported` is configured.
    ///
    /// ```
    /// use mcp_server::{tool, Server};
    ///
    /// /// Reads.
    /// #[tool(scopes = ["notes:read"])]
    /// async fn read() -> &'static str {
    ///     "nothing yet"
    /// }
    ///
    /// assert_eq!(Server::new("demo", "1.0.0").tool(read).declared_scopes(), ["notes:read"]);
    /// ```
    pub fn declared_scopes(&self) -> Vec<String> {
        let registry = self.registry();
        let mut scopes: Vec<String> = registry
            .tools
            .iter()
            .flat_map(|t| t.scopes.iter())
            .chain(registry.prompts.iter().flat_map(|p| p.scopes.iter()))
            .chain(registry.resources.iter().chain(registry.templates.iter()).flat_map(|r| r.scopes.iter()))
            .filter(|s| *s != "offline_access")
            .cloned()
            .collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }

    /// The route of a tool.
    pub(crate) fn tool_route(&self, name: &str) -> Option<Arc<ToolRoute>> {
        if let Some(route) = self.registry().tools.get(name).cloned() {
            return Some(route);
        }
        let unknown = read(&self.inner.unknown_tools).clone()?;
        unknown(name).map(Arc::new)
    }

    /// Lets `route_for` serve calls of tool names that are not registered
    /// (never listed): it returns a route for the name, or `None` for the
    /// usual "Unknown tool" error. A proxy uses it to pass such calls on,
    /// so that its upstream answers them as it would directly.
    ///
    /// ```
    /// use mcp_server::Server;
    /// use mcp_server::tool::{ToolOutput, ToolRoute};
    /// use mcp_core::types::{CallToolResult, Tool};
    ///
    /// let server = Server::new("proxy", "1.0.0");
    /// server.serve_unknown_tools(|name| {
    ///     let definition = Tool { name: name.to_owned(), ..Tool::default() };
    ///     Some(ToolRoute::from_definition(definition, |_call| {
    ///         Box::pin(async { ToolOutput::Result(CallToolResult::error("no such tool upstream")) })
    ///     }))
    /// });
    /// assert!(server.tool_names().is_empty());
    /// ```
    pub fn serve_unknown_tools(&self, route_for: impl Fn(&str) -> Option<ToolRoute> + Send + Sync + 'static) {
        *write(&self.inner.unknown_tools) = Some(Arc::new(route_for));
    }

    /// Calls `watch` with the URI of every resource a client subscribes to
    /// (`resources/subscribe`, session revisions), once the subscription is
    /// recorded: for servers whose resources change elsewhere, such as a
    /// proxy that must subscribe upstream. Updates still reach clients
    /// through [`notify_resource_updated`](Self::notify_resource_updated).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use mcp_server::Server;
    ///
    /// let server = Server::new("proxy", "1.0.0");
    /// let watched = Arc::new(Mutex::new(Vec::new()));
    /// let record = watched.clone();
    /// server.on_resource_subscribe(move |uri| record.lock().unwrap().push(uri.to_owned()));
    /// # assert!(watched.lock().unwrap().is_empty());
    /// ```
    pub fn on_resource_subscribe(&self, watch: impl Fn(&str) + Send + Sync + 'static) {
        *write(&self.inner.on_subscribe) = Some(Arc::new(watch));
    }

    /// Tells the [`on_resource_subscribe`](Self::on_resource_subscribe) hook.
    pub(crate) fn subscribed(&self, uri: &str) {
        let watch = read(&self.inner.on_subscribe).clone();
        if let Some(watch) = watch {
            watch(uri);
        }
    }

    /// Whether a tool by this name exists.
    pub fn has_tool(&self, name: &str) -> bool {
        self.registry().tools.contains(name)
    }
}
