//! Resources: data the client can read by URI, fixed or from a URI template.
//!
//! ```
//! use mcp_server::{resource, Server};
//!
//! /// The greeting of the day.
//! #[resource(uri = "greeting://today", mime_type = "text/plain")]
//! async fn greeting() -> String {
//!     "Hello!".into()
//! }
//!
//! /// A user's profile.
//! #[resource(uri_template = "users://{id}/profile", mime_type = "application/json")]
//! async fn profile(id: u32) -> String {
//!     format!("{{\"id\":{id}}}")
//! }
//!
//! let server = Server::new("demo", "1.0.0").resource(greeting).resource(profile);
//! assert_eq!(server.resource_uris(), ["greeting://today"]);
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mcp_core::McpError;
use mcp_core::types::{Icon, ReadResourceResult, Resource, ResourceContents, ResourceTemplate};

use crate::BoxFuture;
use crate::context::Context;
use crate::uri_template::UriTemplate;

/// One `resources/read`, handed to the resource's handler.
#[derive(Debug)]
pub struct ResourceCall {
    pub(crate) uri: String,
    pub(crate) variables: BTreeMap<String, String>,
    pub(crate) mime_type: Option<String>,
    pub(crate) context: Context,
}

impl ResourceCall {
    /// The URI being read.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The request context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// A template variable parsed as `T`; a value that does not parse is
    /// "resource not found".
    pub fn variable<T: FromStr>(&self, name: &str) -> Result<T, McpError> {
        self.variables
            .get(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| McpError::resource_not_found(self.uri.clone()))
    }
}

type ResourceFn =
    dyn Fn(ResourceCall) -> BoxFuture<'static, Result<ReadResourceResult, McpError>> + Send + Sync;

/// Whether a route serves one URI or a family of URIs.
#[derive(Debug, Clone)]
pub(crate) enum ResourceKind {
    Fixed(Resource),
    Template(ResourceTemplate, UriTemplate),
}

/// A resource or resource template ready to be served.
#[derive(Clone)]
pub struct ResourceRoute {
    pub(crate) kind: ResourceKind,
    pub(crate) scopes: Vec<String>,
    handler: Arc<ResourceFn>,
}

impl std::fmt::Debug for ResourceRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceRoute").field("kind", &self.kind).finish()
    }
}

fn boxed<F, Fut, R>(handler: F) -> Arc<ResourceFn>
where
    F: Fn(ResourceCall) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReadResourceResult,
{
    Arc::new(move |call: ResourceCall| {
        let uri = call.uri.clone();
        let mime = call.mime_type.clone();
        let fut = handler(call);
        Box::pin(async move { fut.await.into_read_resource_result(&uri, mime.as_deref()) })
    })
}

/// Sets a field that fixed resources and templates share.
macro_rules! set_on_kind {
    ($route:ident, $field:ident, $value:expr) => {{
        let value = $value;
        match &mut $route.kind {
            ResourceKind::Fixed(r) => r.$field = value,
            ResourceKind::Template(t, _) => t.$field = value,
        }
        $route
    }};
}

impl ResourceRoute {
    /// A resource at a fixed URI.
    ///
    /// ```
    /// use mcp_server::resource::{ResourceCall, ResourceRoute};
    /// let r = ResourceRoute::fixed("memo://1", "memo", |_c: ResourceCall| async { "remember" });
    /// assert!(r.template().is_none());
    /// ```
    pub fn fixed<F, Fut, R>(uri: impl Into<String>, name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(ResourceCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReadResourceResult,
    {
        let resource = Resource { uri: uri.into(), name: name.into(), ..Resource::default() };
        Self { kind: ResourceKind::Fixed(resource), scopes: Vec::new(), handler: boxed(handler) }
    }

    /// A family of resources described by an RFC 6570 URI template.
    pub fn templated<F, Fut, R>(
        uri_template: &str,
        name: impl Into<String>,
        handler: F,
    ) -> Result<Self, crate::uri_template::UriTemplateError>
    where
        F: Fn(ResourceCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReadResourceResult,
    {
        let parsed = UriTemplate::parse(uri_template)?;
        let template = ResourceTemplate {
            uri_template: uri_template.to_owned(),
            name: name.into(),
            ..ResourceTemplate::default()
        };
        Ok(Self {
            kind: ResourceKind::Template(template, parsed),
            scopes: Vec::new(),
            handler: boxed(handler),
        })
    }

    /// A resource served exactly as `resource` describes it (one mirrored
    /// from another server, say), its handler's result sent as is.
    ///
    /// ```
    /// use mcp_server::resource::ResourceRoute;
    /// use mcp_core::types::{ReadResourceResult, Resource};
    ///
    /// let resource = Resource { uri: "memo://1".into(), name: "memo".into(), ..Resource::default() };
    /// let route = ResourceRoute::from_resource(resource, |_call| Box::pin(async { Ok(ReadResourceResult::default()) }));
    /// assert_eq!(route.resource().map(|r| r.uri.as_str()), Some("memo://1"));
    /// ```
    pub fn from_resource<F>(resource: Resource, handler: F) -> Self
    where
        F: Fn(ResourceCall) -> BoxFuture<'static, Result<ReadResourceResult, McpError>>
            + Send
            + Sync
            + 'static,
    {
        Self { kind: ResourceKind::Fixed(resource), scopes: Vec::new(), handler: Arc::new(handler) }
    }

    /// A resource template served exactly as `template` describes it; its
    /// URI template must parse (RFC 6570).
    ///
    /// ```
    /// use mcp_server::resource::ResourceRoute;
    /// use mcp_core::types::{ReadResourceResult, ResourceTemplate};
    ///
    /// let template = ResourceTemplate { uri_template: "memo://{id}".into(), name: "memo".into(), ..ResourceTemplate::default() };
    /// let route = ResourceRoute::from_template(template, |_call| Box::pin(async { Ok(ReadResourceResult::default()) }))
    ///     .unwrap();
    /// assert!(route.template().is_some());
    /// ```
    pub fn from_template<F>(
        template: ResourceTemplate,
        handler: F,
    ) -> Result<Self, crate::uri_template::UriTemplateError>
    where
        F: Fn(ResourceCall) -> BoxFuture<'static, Result<ReadResourceResult, McpError>>
            + Send
            + Sync
            + 'static,
    {
        let parsed = UriTemplate::parse(&template.uri_template)?;
        Ok(Self {
            kind: ResourceKind::Template(template, parsed),
            scopes: Vec::new(),
            handler: Arc::new(handler),
        })
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        set_on_kind!(self, description, Some(description.into()))
    }

    /// Sets the title.
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Self {
        set_on_kind!(self, title, Some(title.into()))
    }

    /// Sets the MIME type, used for the contents too when the handler returns bare text or bytes.
    #[must_use]
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        set_on_kind!(self, mime_type, Some(mime_type.into()))
    }

    /// Sets icons.
    #[must_use]
    pub fn icons(mut self, icons: Vec<Icon>) -> Self {
        set_on_kind!(self, icons, Some(icons))
    }

    /// Requires these OAuth scopes.
    #[must_use]
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The fixed resource, when this route is one.
    pub fn resource(&self) -> Option<&Resource> {
        match &self.kind {
            ResourceKind::Fixed(r) => Some(r),
            ResourceKind::Template(..) => None,
        }
    }

    /// The template, when this route is one.
    pub fn template(&self) -> Option<&ResourceTemplate> {
        match &self.kind {
            ResourceKind::Template(t, _) => Some(t),
            ResourceKind::Fixed(_) => None,
        }
    }

    pub(crate) fn mime(&self) -> Option<&str> {
        match &self.kind {
            ResourceKind::Fixed(r) => r.mime_type.as_deref(),
            ResourceKind::Template(t, _) => t.mime_type.as_deref(),
        }
    }

    /// The key this route is registered under: its URI or template.
    pub(crate) fn key(&self) -> &str {
        match &self.kind {
            ResourceKind::Fixed(r) => &r.uri,
            ResourceKind::Template(t, _) => &t.uri_template,
        }
    }

    /// The template variables when `uri` is served by this route.
    pub(crate) fn match_uri(&self, uri: &str) -> Option<BTreeMap<String, String>> {
        match &self.kind {
            ResourceKind::Fixed(r) => (r.uri == uri).then(BTreeMap::new),
            ResourceKind::Template(_, t) => t.matches(uri),
        }
    }

    pub(crate) async fn read(
        &self,
        uri: String,
        variables: BTreeMap<String, String>,
        context: Context,
    ) -> Result<ReadResourceResult, McpError> {
        let mime_type = self.mime().map(str::to_owned);
        (self.handler)(ResourceCall { uri, variables, mime_type, context }).await
    }
}

/// Converts into a [`ResourceRoute`]. Implemented by every `#[resource]` function.
pub trait IntoResourceRoute {
    /// Builds the route.
    fn into_resource_route(self) -> ResourceRoute;
}

impl IntoResourceRoute for ResourceRoute {
    fn into_resource_route(self) -> ResourceRoute {
        self
    }
}

/// Binary resource contents, sent base64-encoded as a `blob`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

/// What a resource handler may return. Bare text and bytes take the URI being
/// read and the route's MIME type.
pub trait IntoReadResourceResult {
    /// Performs the conversion.
    fn into_read_resource_result(
        self,
        uri: &str,
        mime_type: Option<&str>,
    ) -> Result<ReadResourceResult, McpError>;
}

fn one(contents: ResourceContents) -> Result<ReadResourceResult, McpError> {
    Ok(ReadResourceResult { contents: vec![contents], ..ReadResourceResult::default() })
}

impl IntoReadResourceResult for ReadResourceResult {
    fn into_read_resource_result(self, _: &str, _: Option<&str>) -> Result<ReadResourceResult, McpError> {
        Ok(self)
    }
}
impl IntoReadResourceResult for ResourceContents {
    fn into_read_resource_result(self, _: &str, _: Option<&str>) -> Result<ReadResourceResult, McpError> {
        one(self)
    }
}
impl IntoReadResourceResult for Vec<ResourceContents> {
    fn into_read_resource_result(self, _: &str, _: Option<&str>) -> Result<ReadResourceResult, McpError> {
        Ok(ReadResourceResult { contents: self, ..ReadResourceResult::default() })
    }
}
impl IntoReadResourceResult for String {
    fn into_read_resource_result(
        self,
        uri: &str,
        mime: Option<&str>,
    ) -> Result<ReadResourceResult, McpError> {
        one(ResourceContents::text(uri, mime.unwrap_or("text/plain"), self))
    }
}
impl IntoReadResourceResult for &'static str {
    fn into_read_resource_result(
        self,
        uri: &str,
        mime: Option<&str>,
    ) -> Result<ReadResourceResult, McpError> {
        self.to_owned().into_read_resource_result(uri, mime)
    }
}
impl IntoReadResourceResult for Blob {
    fn into_read_resource_result(
        self,
        uri: &str,
        mime: Option<&str>,
    ) -> Result<ReadResourceResult, McpError> {
        one(ResourceContents::blob(uri, mime.unwrap_or("application/octet-stream"), STANDARD.encode(self.0)))
    }
}
impl<T: IntoReadResourceResult, E: Into<McpError>> IntoReadResourceResult for Result<T, E> {
    fn into_read_resource_result(
        self,
        uri: &str,
        mime: Option<&str>,
    ) -> Result<ReadResourceResult, McpError> {
        self.map_err(Into::into)?.into_read_resource_result(uri, mime)
    }
}
