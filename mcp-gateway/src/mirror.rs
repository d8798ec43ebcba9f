//! The upstream's tools, prompts and resources, offered by the gateway's
//! own server: listed with the upstream's definitions (tools renamed,
//! hidden and scoped by policy; every entry needs the upstream's scopes),
//! and served by forwarding. Re-read at every (re)connection and every
//! `*/list_changed`, so clients get `list_changed` in turn.

use std::collections::BTreeSet;
use std::sync::Arc;

use mcp_server::McpError;
use mcp_server::ask::AskError;
use mcp_server::core::types::{
    CreateMessageRequestParams, ElicitRequestParams, GetPromptResult, JsonObject,
    LoggingMessageNotificationParams, Prompt, ReadResourceResult, Resource, ResourceTemplate, Tool,
};
use mcp_server::prompt::{PromptCall, PromptRoute};
use mcp_server::resource::{ResourceCall, ResourceRoute};
use mcp_server::tool::{ToolCall, ToolOutput, ToolRoute};
use mcp_server::{BoxFuture, CancellationToken, Context, Server};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::caller::CallerHeaders;
use crate::config::UpstreamConfig;
use crate::upstream::{Answer, Hooks, Relay, Upstream, UpstreamAsk, UpstreamError};

/// Most pages read from one upstream list.
const MAX_PAGES: usize = 100;

/// What is offered now, by kind, to remove what the upstream drops.
#[derive(Debug, Default)]
struct Offered {
    tools: BTreeSet<String>,
    prompts: BTreeSet<String>,
    resources: BTreeSet<String>,
}

/// Keeps `server`'s tools, prompts and resources equal to the upstream's,
/// under the policy, for as long as the upstream runs. The receiver fires
/// once the first lists have been read.
pub(crate) fn keep_in_sync(
    server: Server,
    upstream: Upstream,
    policy: Arc<UpstreamConfig>,
) -> tokio::sync::oneshot::Receiver<()> {
    let mut changes = upstream.lists_changed();
    // Read the lists once at start whatever the version: the upstream may
    // have connected (and bumped it) before this receiver existed.
    changes.mark_changed();
    let (first_tx, first) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut offered = Offered::default();
        let mut first_tx = Some(first_tx);
        while changes.changed().await.is_ok() {
            let capabilities =
                upstream.info().map(|i| i.initialize["capabilities"].clone()).unwrap_or_default();
            match list::<Tool>(&upstream, "tools/list", "tools").await {
                Ok(tools) => offered.tools = offer_tools(&server, &upstream, &policy, tools, &offered.tools),
                Err(e) => {
                    tracing::warn!(upstream = upstream.name(), error = %e, "could not list the upstream's tools")
                }
            }
            if capabilities.get("prompts").is_some() {
                match list::<Prompt>(&upstream, "prompts/list", "prompts").await {
                    Ok(prompts) => {
                        offered.prompts =
                            offer_prompts(&server, &upstream, &policy, prompts, &offered.prompts)
                    }
                    Err(e) => {
                        tracing::warn!(upstream = upstream.name(), error = %e, "could not list the upstream's prompts")
                    }
                }
            }
            if capabilities.get("resources").is_some() {
                let resources = list::<Resource>(&upstream, "resources/list", "resources").await;
                let templates =
                    list::<ResourceTemplate>(&upstream, "resources/templates/list", "resourceTemplates")
                        .await;
                match (resources, templates) {
                    (Ok(resources), Ok(templates)) => {
                        offered.resources = offer_resources(
                            &server,
                            &upstream,
                            &policy,
                            resources,
                            templates,
                            &offered.resources,
                        );
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::warn!(upstream = upstream.name(), error = %e, "could not list the upstream's resources");
                    }
                }
            }
            if let Some(tx) = first_tx.take() {
                let _ = tx.send(());
            }
        }
    });
    first
}

/// Resource subscriptions of the gateway's clients are made upstream too
/// (see [`Upstream::subscribe_resource`]), and the upstream's updates reach
/// the clients subscribed to them.
pub(crate) fn relay_resource_updates(server: &Server, upstream: &Upstream) {
    let subscriber = upstream.clone();
    server.on_resource_subscribe(move |uri| subscriber.subscribe_resource(uri));
    let mut updates = upstream.resource_updates();
    let server = server.clone();
    tokio::spawn(async move {
        loop {
            match updates.recv().await {
                Ok(uri) => server.notify_resource_updated(uri),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// Calls of tool names the upstream did not list go to it all the same, so
/// it answers them as it would directly (and a tool it has just added works
/// before its `list_changed` is read), except the names the policy hides or
/// renames away, which stay unknown. The upstream's scopes still apply.
pub(crate) fn pass_unknown_tools(server: &Server, upstream: Upstream, policy: Arc<UpstreamConfig>) {
    server.serve_unknown_tools(move |name| {
        let renamed_away = policy.tools.get(name).is_some_and(|t| t.rename.is_some());
        if renamed_away || policy.exposed_name(name).is_none() {
            return None;
        }
        let definition = Tool { name: name.to_owned(), ..Tool::default() };
        let route =
            ToolRoute::from_definition(definition, forwarder(upstream.clone(), name.to_owned(), &policy));
        Some(route.scopes(policy.scopes_for(name)))
    });
}

/// Every entry of a paginated list, following `nextCursor`.
async fn list<T: DeserializeOwned>(
    upstream: &Upstream,
    method: &str,
    key: &str,
) -> Result<Vec<T>, UpstreamError> {
    let never = CancellationToken::new();
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(cursor) => json!({"cursor": cursor}),
            None => json!({}),
        };
        let mut page = upstream.request(method, params, Hooks::default(), &never).await?;
        let listed = page.get_mut(key).map(Value::take).unwrap_or(Value::Array(Vec::new()));
        let listed: Vec<T> =
            serde_json::from_value(listed).map_err(|e| UpstreamError::Garbage(format!("{method}: {e}")))?;
        entries.extend(listed);
        cursor = page.get("nextCursor").and_then(Value::as_str).map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    Ok(entries)
}

/// Replaces the offered tools with `tools` under the policy; returns the
/// names now offered.
fn offer_tools(
    server: &Server,
    upstream: &Upstream,
    policy: &UpstreamConfig,
    tools: Vec<Tool>,
    before: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut now = BTreeSet::new();
    for mut definition in tools {
        let original = definition.name.clone();
        let Some(exposed) = policy.exposed_name(&original) else { continue };
        definition.name = exposed.clone();
        let route =
            ToolRoute::from_definition(definition, forwarder(upstream.clone(), original.clone(), policy))
                .scopes(policy.scopes_for(&original));
        server.add_tool(route);
        now.insert(exposed);
    }
    for gone in before.difference(&now) {
        server.remove_tool(gone);
    }
    tracing::info!(upstream = upstream.name(), tools = now.len(), "upstream tools offered");
    now
}

fn offer_prompts(
    server: &Server,
    upstream: &Upstream,
    policy: &UpstreamConfig,
    prompts: Vec<Prompt>,
    before: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut now = BTreeSet::new();
    for definition in prompts {
        let name = definition.name.clone();
        let upstream = upstream.clone();
        let forwarded = name.clone();
        let caller = CallerHeaders::of(policy);
        let route = PromptRoute::from_definition(definition, move |call: PromptCall| {
            let params = json!({"name": forwarded, "arguments": call.arguments()});
            let context = call.context().clone();
            forward::<GetPromptResult>(upstream.clone(), "prompts/get", params, context, caller.clone())
        })
        .scopes(policy.scopes.clone());
        server.add_prompt(route);
        now.insert(name);
    }
    for gone in before.difference(&now) {
        server.remove_prompt(gone);
    }
    now
}

fn offer_resources(
    server: &Server,
    upstream: &Upstream,
    policy: &UpstreamConfig,
    resources: Vec<Resource>,
    templates: Vec<ResourceTemplate>,
    before: &BTreeSet<String>,
) -> BTreeSet<String> {
    let caller = CallerHeaders::of(policy);
    let read = |upstream: Upstream| {
        let caller = caller.clone();
        move |call: ResourceCall| {
            let params = json!({"uri": call.uri()});
            let context = call.context().clone();
            forward::<ReadResourceResult>(upstream.clone(), "resources/read", params, context, caller.clone())
        }
    };
    let mut now = BTreeSet::new();
    for resource in resources {
        let uri = resource.uri.clone();
        server.add_resource(
            ResourceRoute::from_resource(resource, read(upstream.clone())).scopes(policy.scopes.clone()),
        );
        now.insert(uri);
    }
    for template in templates {
        let uri_template = template.uri_template.clone();
        match ResourceRoute::from_template(template, read(upstream.clone())) {
            Ok(route) => {
                server.add_resource(route.scopes(policy.scopes.clone()));
                now.insert(uri_template);
            }
            Err(e) => {
                tracing::warn!(upstream = upstream.name(), %uri_template, error = %e, "resource template skipped")
            }
        }
    }
    for gone in before.difference(&now) {
        server.remove_resource(gone);
    }
    now
}

/// Forwards one request whose answer is sent on as `T`, cancellation passed on.
fn forward<T: DeserializeOwned + Send + 'static>(
    upstream: Upstream,
    method: &'static str,
    params: Value,
    context: Context,
    caller: CallerHeaders,
) -> BoxFuture<'static, Result<T, McpError>> {
    Box::pin(async move {
        let hooks = Hooks { headers: caller.for_call(&context).await?, ..Hooks::default() };
        let answer = upstream.ask(method, params, hooks, context.cancellation_token()).await;
        let answer = answer.map_err(|e| to_mcp_error(upstream.name(), e))?;
        answer.parse().map_err(|e| {
            McpError::internal(format!(
                "upstream {:?} answered {method} with an invalid result: {e}",
                upstream.name()
            ))
        })
    })
}

/// The handler of one mirrored tool: `tools/call` under the upstream's own
/// name, progress relayed, cancellation passed on, and the upstream's
/// questions (elicitation, sampling, roots) asked of this call's client.
fn forwarder(
    upstream: Upstream,
    original: String,
    policy: &UpstreamConfig,
) -> impl Fn(ToolCall) -> BoxFuture<'static, ToolOutput> + Send + Sync + 'static {
    let caller = CallerHeaders::of(policy);
    move |call: ToolCall| {
        let upstream = upstream.clone();
        let name = original.clone();
        let caller = caller.clone();
        Box::pin(async move {
            let (arguments, context) = call.into_parts();
            // Built by hand: `json!` would copy the arguments.
            let mut params = serde_json::Map::new();
            params.insert("name".into(), Value::String(name));
            params.insert("arguments".into(), Value::Object(arguments));
            let params = Value::Object(params);
            let (relay_tx, mut relay_rx) = mpsc::channel::<Relay>(64);
            // A child of the client's: also stopped when the client must answer first.
            let cancel = context.cancellation_token().child_token();
            let headers = match caller.for_call(&context).await {
                Ok(headers) => headers,
                Err(error) => return ToolOutput::Error(error),
            };
            let hooks =
                Hooks { relay: Some(relay_tx), progress: context.progress_token().is_some(), headers };
            let request = upstream.ask("tools/call", params, hooks, &cancel);
            tokio::pin!(request);
            let mut asked = 0usize;
            let mut input_required = false;
            let outcome = loop {
                tokio::select! {
                    // What the upstream sent before its answer goes out before it.
                    biased;
                    Some(relayed) = relay_rx.recv() => match relayed {
                        Relay::Progress(update) => {
                            context.progress(update.progress, update.total, update.message.as_deref()).await;
                        }
                        Relay::Log(log) => relay_log(&context, log).await,
                        Relay::Ask(ask) => {
                            asked += 1;
                            if relay_ask(&context, asked, ask).await == Relayed::InputRequired {
                                // 2026-07-28: the call ends here and runs again with the
                                // client's answer; the upstream's call is cancelled.
                                input_required = true;
                                cancel.cancel();
                            }
                        }
                    },
                    outcome = &mut request => break outcome,
                }
            };
            // Questions asked after the answer are dropped: the upstream hears "the call ended".
            while let Ok(relayed) = relay_rx.try_recv() {
                match relayed {
                    Relay::Progress(update) => {
                        context.progress(update.progress, update.total, update.message.as_deref()).await;
                    }
                    Relay::Log(log) => relay_log(&context, log).await,
                    Relay::Ask(_) => {}
                }
            }
            if input_required {
                // Whatever is returned here, the runtime answers with the input request.
                return ToolOutput::Failed("input required from the client".into());
            }
            match outcome.and_then(Answer::into_value) {
                Ok(result) => match call_tool_result(result) {
                    Ok(result) => ToolOutput::Json(result),
                    Err(problem) => ToolOutput::Error(McpError::internal(format!(
                        "upstream {:?} answered tools/call with an invalid result: {problem}",
                        upstream.name()
                    ))),
                },
                Err(error) => ToolOutput::Error(to_mcp_error(upstream.name(), error)),
            }
        })
    }
}

/// An upstream's `tools/call` result, checked for the shape of a finished
/// `CallToolResult` and otherwise passed on as it is: content types and
/// fields this gateway does not know reach the client unchanged. Null
/// members are dropped and a missing `content` is `[]`, as reading it into
/// the typed result would have made them; a result that is not finished
/// (`resultType` other than `"complete"`: the gateway speaks a session
/// revision upstream, which has none) is refused.
fn call_tool_result(result: Value) -> Result<JsonObject, &'static str> {
    let Value::Object(mut result) = result else { return Err("not a JSON object") };
    result.retain(|_, value| !value.is_null());
    let blocks = result.entry("content").or_insert_with(|| Value::Array(Vec::new()));
    let blocks = blocks.as_array().ok_or("`content` is not an array")?;
    if !blocks.iter().all(|block| block.get("type").is_some_and(Value::is_string)) {
        return Err("a content block has no `type`");
    }
    if result.get("isError").is_some_and(|v| !v.is_boolean()) {
        return Err("`isError` is not a boolean");
    }
    if result.get("_meta").is_some_and(|v| !v.is_object()) {
        return Err("`_meta` is not an object");
    }
    if result.get("resultType").is_some_and(|v| v != "complete") {
        return Err("`resultType` is not \"complete\"");
    }
    Ok(result)
}

/// Passes an upstream's log message on to the call's client, under the
/// level that client asked for.
async fn relay_log(context: &Context, params: Value) {
    match serde_json::from_value::<LoggingMessageNotificationParams>(params) {
        Ok(message) => context.log(message.level, message.logger.as_deref(), message.data).await,
        Err(e) => tracing::debug!(error = %e, "an upstream log message that is not one; dropped"),
    }
}

/// What became of a question the upstream asked.
#[derive(Debug, PartialEq, Eq)]
enum Relayed {
    Answered,
    /// 2026-07-28 client: the answer comes with the call's next round.
    InputRequired,
}

/// Asks the call's client what the upstream asked, and answers the
/// upstream. The `n`th question of a call is keyed `upstream-n`, so a
/// modern client's answer finds it again when the call runs again.
async fn relay_ask(context: &Context, n: usize, ask: UpstreamAsk) -> Relayed {
    let key = format!("upstream-{n}");
    let answer: Result<Value, AskError> = match ask.method.as_str() {
        "elicitation/create" => match serde_json::from_value::<ElicitRequestParams>(ask.params) {
            Ok(params) => context.elicit(&key, params).await.map(|r| json!(r)),
            Err(e) => Err(AskError::Malformed(e.to_string())),
        },
        "sampling/createMessage" => match serde_json::from_value::<CreateMessageRequestParams>(ask.params) {
            Ok(params) => context.sample(&key, params).await.map(|r| json!(r)),
            Err(e) => Err(AskError::Malformed(e.to_string())),
        },
        "roots/list" => context.list_roots(&key).await.map(|r| json!(r)),
        other => {
            let _ = ask.reply.send(Err((-32601, format!("the gateway does not forward {other}"))));
            return Relayed::Answered;
        }
    };
    let reply = match answer {
        Ok(result) => Ok(result),
        Err(AskError::InputRequired) => {
            let _ = ask.reply.send(Err((-32603, "the client answers with the call's next round".into())));
            return Relayed::InputRequired;
        }
        Err(AskError::Unsupported(what)) => Err((-32601, format!("the client does not support {what}"))),
        Err(other) => Err((-32603, other.to_string())),
    };
    let _ = ask.reply.send(reply);
    Relayed::Answered
}

/// A forwarding failure as the client sees it: the upstream's own JSON-RPC
/// errors pass through; the gateway's are internal errors naming the upstream.
fn to_mcp_error(upstream: &str, error: UpstreamError) -> McpError {
    match error {
        UpstreamError::Rpc { code, message, data } => {
            McpError::Other { code: i32::try_from(code).unwrap_or(-32603), message, data }
        }
        other => McpError::internal(format!("upstream {upstream:?}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_tool_results_pass_as_they_are_when_shaped_like_one() {
        let unknown_to_this_crate = json!({
            "content": [{"type": "hologram", "frames": 3}, {"type": "text", "text": "hi"}],
            "isError": false, "structuredContent": {"n": 1}, "_meta": {"a": 1}, "futureField": [1],
            "resultType": "complete"
        });
        let passed = call_tool_result(unknown_to_this_crate.clone()).unwrap();
        assert_eq!(Value::Object(passed), unknown_to_this_crate);
        // Nulls dropped, `content` defaulted, as the typed result would have them.
        let bare = call_tool_result(json!({"structuredContent": {"n": 1}, "_meta": null, "isError": null}));
        assert_eq!(Value::Object(bare.unwrap()), json!({"structuredContent": {"n": 1}, "content": []}));
        for refused in [
            json!("text"),
            json!({"content": "text"}),
            json!({"content": [{"text": "no type"}]}),
            json!({"content": [], "isError": "yes"}),
            json!({"content": [], "_meta": 1}),
            json!({"resultType": "input_required", "inputRequests": {}, "requestState": "s"}),
            json!({"content": [], "resultType": 5}),
        ] {
            assert!(call_tool_result(refused.clone()).is_err(), "{refused}");
        }
    }
}
