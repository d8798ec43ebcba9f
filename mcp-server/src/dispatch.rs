//! Method routing shared by every transport and both eras.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use mcp_core::jsonrpc::{ErrorResponse, Message, Request, Response};
use mcp_core::types::{
    CallToolRequestParams, ClientCapabilities, CompleteRequestParams, CompleteResult, Completion,
    DiscoverResult, GetPromptRequestParams, Implementation, InputRequiredResult, JsonObject,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, LoggingLevel,
    PaginatedRequestParams, ReadResourceRequestParams, ResultType, SetLevelRequestParams,
    SubscribeRequestParams, UnsubscribeRequestParams, methods,
};
use mcp_core::{Identity, McpError, ProtocolVersion, RequestId, meta};
use serde::de::DeserializeOwned;
use serde::{Deserialize as _, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::ask::{lock, merge_answers};
use crate::context::{Context, LogGate, Outbound, RequestInfo};
use crate::mrtr::{self, Binding};
use crate::server::Server;
use crate::session::Session;
use crate::tool::ToolRoute;

/// How a request ended, before a transport writes it out.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A result object.
    Result(Value),
    /// A JSON-RPC error.
    Error(McpError),
    /// The caller lacks these scopes: an HTTP transport answers 403.
    InsufficientScope(Vec<String>),
    /// Cancelled: nothing may be sent.
    Cancelled,
}

impl Reply {
    /// The message for the client, if any.
    pub(crate) fn into_message(self, id: RequestId, version: ProtocolVersion) -> Option<Message> {
        match self {
            Self::Result(result) => Some(Message::Response(Response::new(id, result))),
            Self::Error(error) => {
                Some(Message::Error(ErrorResponse::new(Some(id), error.to_error_object(version))))
            }
            Self::InsufficientScope(scopes) => {
                let error = McpError::Other {
                    code: mcp_core::error::codes::INVALID_REQUEST,
                    message: format!("insufficient scope: requires {}", scopes.join(" ")),
                    data: Some(serde_json::json!({ "requiredScopes": scopes })),
                };
                Some(Message::Error(ErrorResponse::new(Some(id), error.to_error_object(version))))
            }
            Self::Cancelled => None,
        }
    }
}

/// What the transport knows about the request's surroundings.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub(crate) version: ProtocolVersion,
    pub(crate) client_capabilities: Arc<ClientCapabilities>,
    pub(crate) client_info: Option<Arc<Implementation>>,
    pub(crate) log_gate: LogGate,
    pub(crate) identity: Option<Arc<Identity>>,
    pub(crate) cancel: CancellationToken,
    pub(crate) session: Option<Arc<Session>>,
    pub(crate) outbound: Option<Outbound>,
    /// The tool a `tools/call` names, when the transport already looked it up.
    pub(crate) tool: Option<Arc<ToolRoute>>,
}

/// The `_meta` of a modern (2026-07-28) request.
#[derive(Debug, Clone)]
pub(crate) struct ModernMeta {
    pub(crate) version: ProtocolVersion,
    pub(crate) client_capabilities: Arc<ClientCapabilities>,
    pub(crate) client_info: Option<Arc<Implementation>>,
    pub(crate) log_level: Option<LoggingLevel>,
}

/// The `_meta` object of a request's params.
pub(crate) fn request_meta(params: Option<&Value>) -> Option<&JsonObject> {
    params?.get("_meta")?.as_object()
}

/// Whether a request speaks the modern era: it names its version in `_meta`.
pub(crate) fn is_modern_request(params: Option<&Value>) -> bool {
    request_meta(params).is_some_and(|m| m.contains_key(meta::PROTOCOL_VERSION))
}

/// Reads and checks the modern `_meta` (SEP-2575): protocol version and client
/// capabilities are required (`-32602`); an unknown version is `-32022`.
pub(crate) fn modern_meta(params: Option<&Value>) -> Result<ModernMeta, McpError> {
    let m = request_meta(params).ok_or_else(|| McpError::invalid_params("missing _meta"))?;
    let version = m
        .get(meta::PROTOCOL_VERSION)
        .and_then(Value::as_str)
        .ok_or_else(|| McpError::invalid_params(format!("_meta is missing {}", meta::PROTOCOL_VERSION)))?;
    let version = match version.parse::<ProtocolVersion>() {
        Ok(v) if v.is_modern() => v,
        _ => return Err(McpError::UnsupportedProtocolVersion { requested: version.to_owned() }),
    };
    let capabilities = m
        .get(meta::CLIENT_CAPABILITIES)
        .ok_or_else(|| McpError::invalid_params(format!("_meta is missing {}", meta::CLIENT_CAPABILITIES)))?;
    // Deserialized from the borrowed values: no copies of the `_meta` parts.
    let client_capabilities = ClientCapabilities::deserialize(capabilities)
        .map_err(|e| McpError::invalid_params(format!("{}: {e}", meta::CLIENT_CAPABILITIES)))?;
    let client_info =
        m.get(meta::CLIENT_INFO).and_then(|v| Implementation::deserialize(v).ok()).map(Arc::new);
    let log_level = match m.get(meta::LOG_LEVEL) {
        None => None,
        Some(level) => Some(
            LoggingLevel::deserialize(level)
                .map_err(|_| McpError::invalid_params(format!("unknown log level {level}")))?,
        ),
    };
    Ok(ModernMeta { version, client_capabilities: Arc::new(client_capabilities), client_info, log_level })
}

fn parse_params<T: DeserializeOwned + Default>(params: Option<Value>) -> Result<T, McpError> {
    match params {
        None => Ok(T::default()),
        Some(p) => serde_json::from_value(p).map_err(|e| McpError::invalid_params(e.to_string())),
    }
}

/// `tools/call` params. The arguments and `_meta`, when objects, are moved
/// out as they are: `from_value` would rebuild both maps entry by entry.
fn call_tool_params(params: Option<Value>) -> Result<CallToolRequestParams, McpError> {
    let Some(Value::Object(mut fields)) = params else { return parse_params(params) };
    let arguments = take_object(&mut fields, "arguments");
    let meta = take_object(&mut fields, "_meta");
    let mut p: CallToolRequestParams = parse_params(Some(Value::Object(fields)))?;
    if arguments.is_some() {
        p.arguments = arguments;
    }
    if meta.is_some() {
        p.meta = meta;
    }
    Ok(p)
}

/// Removes `key` from `fields` when it holds an object; anything else stays
/// for the typed parse to accept or refuse.
fn take_object(fields: &mut JsonObject, key: &str) -> Option<JsonObject> {
    if !fields.get(key).is_some_and(Value::is_object) {
        return None;
    }
    match fields.remove(key) {
        Some(Value::Object(object)) => Some(object),
        _ => None,
    }
}

fn to_value(result: &impl Serialize) -> Reply {
    serialized(serde_json::to_value(result))
}

/// A result, or the internal error of one that could not be serialized.
fn serialized(value: Result<Value, serde_json::Error>) -> Reply {
    match value {
        Ok(v) => Reply::Result(v),
        Err(e) => Reply::Error(McpError::internal(format!("result could not be serialized: {e}"))),
    }
}

fn progress_token(params: Option<&Value>) -> Option<RequestId> {
    request_meta(params)?.get(meta::PROGRESS_TOKEN).and_then(RequestId::from_value)
}

/// Which results are cacheable in 2026-07-28 (SEP-2549).
fn is_cacheable(method: &str) -> bool {
    matches!(
        method,
        methods::SERVER_DISCOVER
            | methods::TOOLS_LIST
            | methods::PROMPTS_LIST
            | methods::RESOURCES_LIST
            | methods::RESOURCES_TEMPLATES_LIST
            | methods::RESOURCES_READ
    )
}

impl Server {
    /// Handles one request of either era. Legacy-only methods (`initialize`,
    /// notifications) are the session's business, not this one's.
    pub(crate) async fn dispatch(&self, request: Request, scope: Scope) -> Reply {
        // Retries of multi round-trip requests must not be cached (SEP-2549).
        let is_retry = request
            .params
            .as_ref()
            .is_some_and(|p| p.get("inputResponses").is_some() || p.get("requestState").is_some());
        let cacheable = is_cacheable(&request.method) && !is_retry;
        let modern = scope.version.is_modern();
        let private = scope.identity.is_some();
        let reply = self.route(request, scope).await;
        match reply {
            Reply::Result(mut value) if modern => {
                self.decorate_modern(&mut value, cacheable, private);
                Reply::Result(value)
            }
            other => other,
        }
    }

    async fn route(&self, request: Request, scope: Scope) -> Reply {
        let Request { id, method, params } = request;
        let modern = scope.version.is_modern();
        let tool = scope.tool;
        let info = RequestInfo {
            id,
            version: scope.version,
            progress_token: progress_token(params.as_ref()),
            client_capabilities: scope.client_capabilities,
            client_info: scope.client_info,
            log_gate: scope.log_gate,
            identity: scope.identity,
            cancel: scope.cancel,
            session: scope.session,
            outbound: scope.outbound,
        };
        let result = match method.as_str() {
            methods::PING if !modern => Ok(Reply::Result(serde_json::json!({}))),
            methods::SERVER_DISCOVER => Ok(self.discover()),
            methods::TOOLS_LIST => self.list_tools(params, info.identity.as_deref(), info.version),
            methods::TOOLS_CALL => return self.call_tool(params, info, tool).await,
            methods::PROMPTS_LIST => self.list_prompts(params, info.identity.as_deref()),
            methods::PROMPTS_GET => return self.get_prompt(params, info).await,
            methods::RESOURCES_LIST => self.list_resources(params, info.identity.as_deref()),
            methods::RESOURCES_TEMPLATES_LIST => self.list_templates(params, info.identity.as_deref()),
            methods::RESOURCES_READ => return self.read_resource(params, info).await,
            methods::RESOURCES_SUBSCRIBE if !modern => self.subscribe(params, &info, true),
            methods::RESOURCES_UNSUBSCRIBE if !modern => self.subscribe(params, &info, false),
            methods::LOGGING_SET_LEVEL if !modern => self.set_level(params, &info),
            methods::COMPLETION_COMPLETE => return self.complete(params, info).await,
            other => Err(McpError::method_not_found(other)),
        };
        result.unwrap_or_else(Reply::Error)
    }

    /// Adds `resultType`, `serverInfo` and, where cacheable, `ttlMs` and `cacheScope`.
    fn decorate_modern(&self, value: &mut Value, cacheable: bool, private: bool) {
        let Value::Object(map) = value else { return };
        map.entry("resultType").or_insert_with(|| Value::String("complete".into()));
        let settings = self.settings();
        let meta = map.entry("_meta").or_insert_with(|| Value::Object(JsonObject::new()));
        if let Value::Object(meta) = meta {
            meta.insert(meta::SERVER_INFO.into(), (*settings.info_json).clone());
        }
        let complete = map.get("resultType").and_then(Value::as_str) == Some("complete");
        if cacheable && complete {
            let ttl = u64::try_from(settings.cache_ttl.as_millis()).unwrap_or(u64::MAX);
            map.entry("ttlMs").or_insert_with(|| Value::from(ttl));
            let scope = if private { "private" } else { "public" };
            map.entry("cacheScope").or_insert_with(|| Value::String(scope.into()));
        }
    }

    fn discover(&self) -> Reply {
        let settings = self.settings();
        to_value(&DiscoverResult {
            supported_versions: mcp_core::ProtocolVersion::supported_strings(),
            capabilities: self.capabilities(),
            instructions: settings.instructions.clone(),
            ..DiscoverResult::default()
        })
    }

    fn list_tools(
        &self,
        params: Option<Value>,
        who: Option<&Identity>,
        version: ProtocolVersion,
    ) -> Result<Reply, McpError> {
        let p: PaginatedRequestParams = parse_params(params)?;
        let page_size = self.settings().page_size;
        let page = self.registry().tools.page(p.cursor.as_deref(), page_size, |t| allowed(who, &t.scopes))?;
        let structured = version.has_structured_output();
        // The entries are serialized once per tool; a page only copies them.
        let tools = page.items.iter().map(|t| t.listing(structured).clone()).collect();
        let mut result = JsonObject::new();
        result.insert("tools".into(), Value::Array(tools));
        if let Some(cursor) = page.next_cursor {
            result.insert("nextCursor".into(), Value::from(cursor));
        }
        Ok(Reply::Result(Value::Object(result)))
    }

    fn list_prompts(&self, params: Option<Value>, who: Option<&Identity>) -> Result<Reply, McpError> {
        let p: PaginatedRequestParams = parse_params(params)?;
        let page_size = self.settings().page_size;
        let page =
            self.registry().prompts.page(p.cursor.as_deref(), page_size, |t| allowed(who, &t.scopes))?;
        let prompts = page.items.iter().map(|t| t.definition.clone()).collect();
        Ok(to_value(&ListPromptsResult {
            prompts,
            next_cursor: page.next_cursor,
            ..ListPromptsResult::default()
        }))
    }

    fn list_resources(&self, params: Option<Value>, who: Option<&Identity>) -> Result<Reply, McpError> {
        let p: PaginatedRequestParams = parse_params(params)?;
        let page_size = self.settings().page_size;
        let page =
            self.registry().resources.page(p.cursor.as_deref(), page_size, |r| allowed(who, &r.scopes))?;
        let resources = page.items.iter().filter_map(|r| r.resource().cloned()).collect();
        Ok(to_value(&ListResourcesResult { resources, next_cursor: page.next_cursor, ..Default::default() }))
    }

    fn list_templates(&self, params: Option<Value>, who: Option<&Identity>) -> Result<Reply, McpError> {
        let p: PaginatedRequestParams = parse_params(params)?;
        let page_size = self.settings().page_size;
        let page =
            self.registry().templates.page(p.cursor.as_deref(), page_size, |r| allowed(who, &r.scopes))?;
        let resource_templates = page.items.iter().filter_map(|r| r.template().cloned()).collect();
        Ok(to_value(&ListResourceTemplatesResult {
            resource_templates,
            next_cursor: page.next_cursor,
            ..Default::default()
        }))
    }

    async fn call_tool(
        &self,
        params: Option<Value>,
        info: RequestInfo,
        tool: Option<Arc<ToolRoute>>,
    ) -> Reply {
        let p = match call_tool_params(params) {
            Ok(p) => p,
            Err(e) => return Reply::Error(e),
        };
        let found = tool.filter(|t| t.definition.name == p.name);
        let Some(route) = found.or_else(|| self.tool_route(&p.name)) else {
            return Reply::Error(McpError::invalid_params(format!("Unknown tool: {}", p.name)));
        };
        if let Some(missing) = missing_scopes(info.identity.as_deref(), &route.scopes) {
            return Reply::InsufficientScope(missing);
        }
        let arguments = Value::Object(p.arguments.unwrap_or_default());
        // Multi round-trip state (modern era only) is bound to the arguments: keep
        // them for the digest, which is computed only if state is opened or sealed.
        let bound = if info.version.is_modern() { arguments.clone() } else { Value::Null };
        let structured = info.version.has_structured_output();
        self.interactive(
            methods::TOOLS_CALL,
            &p.name,
            &bound,
            p.request_state,
            p.input_responses,
            info,
            |ctx| async move {
                match route.call(arguments, ctx).await {
                    Ok(result) => serialized(result.into_value(structured)),
                    Err(error) => Reply::Error(error),
                }
            },
        )
        .await
    }

    async fn get_prompt(&self, params: Option<Value>, info: RequestInfo) -> Reply {
        let p: GetPromptRequestParams = match parse_params(params) {
            Ok(p) => p,
            Err(e) => return Reply::Error(e),
        };
        let Some(route) = self.registry().prompts.get(&p.name).cloned() else {
            return Reply::Error(McpError::invalid_params(format!("Unknown prompt: {}", p.name)));
        };
        if let Some(missing) = missing_scopes(info.identity.as_deref(), &route.scopes) {
            return Reply::InsufficientScope(missing);
        }
        let arguments: BTreeMap<String, String> = p.arguments.unwrap_or_default();
        let bound = if info.version.is_modern() {
            serde_json::to_value(&arguments).unwrap_or_default()
        } else {
            Value::Null
        };
        self.interactive(
            methods::PROMPTS_GET,
            &p.name,
            &bound,
            p.request_state,
            p.input_responses,
            info,
            |ctx| async move {
                match route.get(arguments, ctx).await {
                    Ok(result) => to_value(&result),
                    Err(e) => Reply::Error(e),
                }
            },
        )
        .await
    }

    async fn read_resource(&self, params: Option<Value>, info: RequestInfo) -> Reply {
        let p: ReadResourceRequestParams = match parse_params(params) {
            Ok(p) => p,
            Err(e) => return Reply::Error(e),
        };
        let found = {
            let registry = self.registry();
            match registry.resources.get(&p.uri) {
                Some(route) => Some((route.clone(), BTreeMap::new())),
                None => {
                    registry.templates.iter().find_map(|r| r.match_uri(&p.uri).map(|vars| (r.clone(), vars)))
                }
            }
        };
        let Some((route, variables)) = found else {
            return Reply::Error(McpError::resource_not_found(p.uri));
        };
        if let Some(missing) = missing_scopes(info.identity.as_deref(), &route.scopes) {
            return Reply::InsufficientScope(missing);
        }
        let uri = p.uri.clone();
        self.interactive(
            methods::RESOURCES_READ,
            &p.uri,
            &Value::Null,
            p.request_state,
            p.input_responses,
            info,
            |ctx| async move {
                match route.read(uri, variables, ctx).await {
                    Ok(result) => to_value(&result),
                    Err(e) => Reply::Error(e),
                }
            },
        )
        .await
    }

    /// Runs a handler that may ask the client for input, honouring
    /// cancellation, and turns unanswered questions into an
    /// `InputRequiredResult` (modern era).
    #[allow(clippy::too_many_arguments)]
    async fn interactive<F, Fut>(
        &self,
        method: &str,
        target: &str,
        arguments: &Value,
        request_state: Option<String>,
        input_responses: Option<JsonObject>,
        info: RequestInfo,
        run: F,
    ) -> Reply
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = Reply>,
    {
        let modern = info.version.is_modern();
        let settings = self.settings();
        let identity = info.identity.clone();
        // The caller and the digest of the arguments bind request state: both
        // computed only when state is opened or sealed, not for every call.
        let bound = || (identity.as_deref().map(mrtr::principal_of), mrtr::arguments_digest(arguments));
        let mut answers = JsonObject::new();
        if modern {
            if let Some(state) = request_state.as_deref() {
                let (principal, digest) = bound();
                let binding = Binding { method, target, principal: principal.as_deref(), arguments: &digest };
                match mrtr::open(&settings.request_state_key, binding, state) {
                    Ok(previous) => answers = previous,
                    Err(e) => return Reply::Error(McpError::invalid_params(e.to_string())),
                }
            }
            answers = merge_answers(answers, input_responses);
        }
        let cancel = info.cancel.clone();
        let version = info.version;
        let ctx = Context::new(self.clone(), info, answers);
        let exchange = ctx.input.clone();
        let reply = tokio::select! {
            biased;
            () = cancel.cancelled() => return Reply::Cancelled,
            reply = run(ctx) => reply,
        };
        // A cancellation that raced the handler's last step still wins: nothing
        // may be sent for a cancelled request.
        if cancel.is_cancelled() {
            return Reply::Cancelled;
        }
        let mut exchange = lock(&exchange);
        if let Some(problem) = exchange.malformed.take() {
            return Reply::Error(McpError::invalid_params(problem));
        }
        if !version.is_modern() {
            return reply;
        }
        if !exchange.missing_capabilities.is_empty() {
            let required = Value::Object(std::mem::take(&mut exchange.missing_capabilities));
            return Reply::Error(McpError::MissingClientCapability { required });
        }
        if exchange.missing.is_empty() {
            return reply;
        }
        let (principal, digest) = bound();
        let binding = Binding { method, target, principal: principal.as_deref(), arguments: &digest };
        let state =
            mrtr::seal(&settings.request_state_key, binding, &exchange.answers, settings.request_state_ttl);
        to_value(&InputRequiredResult {
            result_type: ResultType::InputRequired,
            input_requests: Some(std::mem::take(&mut exchange.missing)),
            request_state: Some(state),
            meta: None,
        })
    }

    fn subscribe(&self, params: Option<Value>, info: &RequestInfo, on: bool) -> Result<Reply, McpError> {
        let session =
            info.session.as_ref().ok_or_else(|| McpError::method_not_found("resources/subscribe"))?;
        if on {
            let p: SubscribeRequestParams = parse_required(params)?;
            if !session.subscribe(p.uri.clone()) {
                return Err(McpError::InvalidRequest("too many resource subscriptions".into()));
            }
            self.subscribed(&p.uri);
        } else {
            let p: UnsubscribeRequestParams = parse_required(params)?;
            session.unsubscribe(&p.uri);
        }
        Ok(Reply::Result(serde_json::json!({})))
    }

    fn set_level(&self, params: Option<Value>, info: &RequestInfo) -> Result<Reply, McpError> {
        let p: SetLevelRequestParams = parse_required(params)?;
        if let Some(session) = &info.session {
            session.set_log_level(p.level);
        }
        Ok(Reply::Result(serde_json::json!({})))
    }

    async fn complete(&self, params: Option<Value>, info: RequestInfo) -> Reply {
        let p: CompleteRequestParams = match parse_required(params) {
            Ok(p) => p,
            Err(e) => return Reply::Error(e),
        };
        let completion = match self.completion_handler() {
            Some(handler) => match handler(p, Context::new(self.clone(), info, JsonObject::new())).await {
                Ok(c) => c,
                Err(e) => return Reply::Error(e),
            },
            None => Completion { values: Vec::new(), total: Some(0), has_more: Some(false) },
        };
        to_value(&CompleteResult { completion, ..CompleteResult::default() })
    }
}

fn parse_required<T: DeserializeOwned>(params: Option<Value>) -> Result<T, McpError> {
    let params = params.ok_or_else(|| McpError::invalid_params("missing params"))?;
    serde_json::from_value(params).map_err(|e| McpError::invalid_params(e.to_string()))
}

impl Server {
    /// When `who` lacks a scope that `method` on its target needs: every scope
    /// the target needs (so the client can ask for all of them at once,
    /// SEP-2350). Transports with an auth layer answer this with 403 before
    /// running anything.
    ///
    /// `tool` is the route a `tools/call` names, when already looked up
    /// (see [`called_tool`](Self::called_tool)).
    pub(crate) fn scope_challenge(
        &self,
        request: &Request,
        tool: Option<&ToolRoute>,
        who: &Identity,
    ) -> Option<Vec<String>> {
        if let Some(tool) = tool {
            let scopes = tool.required_scopes();
            return (!who.has_all_scopes(scopes)).then(|| scopes.to_vec());
        }
        let params = request.params.as_ref();
        let key = |k: &str| params.and_then(|p| p.get(k)).and_then(Value::as_str);
        let registry = self.registry();
        let scopes: &[String] = match request.method.as_str() {
            methods::TOOLS_CALL => &registry.tools.get(key("name")?)?.scopes,
            methods::PROMPTS_GET => &registry.prompts.get(key("name")?)?.scopes,
            methods::RESOURCES_READ => {
                let uri = key("uri")?;
                match registry.resources.get(uri) {
                    Some(route) => &route.scopes,
                    None => &registry.templates.iter().find(|r| r.match_uri(uri).is_some())?.scopes,
                }
            }
            _ => return None,
        };
        // Copied only for a refusal.
        (!who.has_all_scopes(scopes)).then(|| scopes.to_vec())
    }

    /// The route of the tool a `tools/call` names, if it exists: looked up
    /// once by a transport for its checks and the call.
    pub(crate) fn called_tool(&self, request: &Request) -> Option<Arc<ToolRoute>> {
        if request.method != methods::TOOLS_CALL {
            return None;
        }
        let name = request.params.as_ref()?.get("name")?.as_str()?;
        self.tool_route(name)
    }
}

/// Whether `who` may see and use something needing `scopes`. Without an
/// identity (auth off) everything is allowed.
fn allowed(who: Option<&Identity>, scopes: &[String]) -> bool {
    who.is_none_or(|who| who.has_all_scopes(scopes))
}

fn missing_scopes(who: Option<&Identity>, scopes: &[String]) -> Option<Vec<String>> {
    let who = who?;
    // Collected only for a refusal.
    if who.has_all_scopes(scopes) {
        return None;
    }
    Some(who.missing_scopes(scopes).into_iter().map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn call_tool_params_read_as_the_typed_parse_does() {
        let cases = [
            json!({"name": "echo", "arguments": {"message": "hi", "n": [1, {"a": null}]},
                   "_meta": {"progressToken": 3}, "requestState": "s", "extra": true}),
            json!({"name": "echo"}),
            json!({"name": "echo", "arguments": null, "_meta": null}),
        ];
        for params in cases {
            let typed: CallToolRequestParams = serde_json::from_value(params.clone()).unwrap();
            assert_eq!(call_tool_params(Some(params)).unwrap(), typed);
        }
        for refused in [json!({"name": "echo", "arguments": [1]}), json!({"arguments": {}}), json!([1])] {
            let typed = serde_json::from_value::<CallToolRequestParams>(refused.clone()).unwrap_err();
            let McpError::InvalidParams(message) = call_tool_params(Some(refused)).unwrap_err() else {
                panic!("not invalid params")
            };
            assert_eq!(message, typed.to_string());
        }
    }
}
