//! The upstream's tools, offered by the gateway's own server: listed with
//! the upstream's definitions (renamed, hidden and scoped by policy), and
//! called by forwarding. Re-read at every (re)connection and every
//! `tools/list_changed`, so clients get `list_changed` in turn.

use std::collections::BTreeSet;
use std::sync::Arc;

use mcp_server::core::McpError;
use mcp_server::core::types::{CallToolResult, Tool};
use mcp_server::tool::{ToolCall, ToolOutput, ToolRoute};
use mcp_server::{BoxFuture, Server};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::config::UpstreamConfig;
use crate::upstream::{Progress, Upstream, UpstreamError};

/// Most `tools/list` pages read from one upstream.
const MAX_PAGES: usize = 100;

/// Keeps `server`'s tools equal to the upstream's, under the policy, for as
/// long as the upstream runs.
pub(crate) fn keep_in_sync(server: Server, upstream: Upstream, policy: Arc<UpstreamConfig>) {
    let mut changes = upstream.tools_changed();
    tokio::spawn(async move {
        let mut offered: BTreeSet<String> = BTreeSet::new();
        while changes.changed().await.is_ok() {
            match list_tools(&upstream).await {
                Ok(tools) => offered = offer(&server, &upstream, &policy, tools, &offered),
                Err(e) => {
                    tracing::warn!(upstream = upstream.name(), error = %e, "could not list the upstream's tools")
                }
            }
        }
    });
}

/// Every tool the upstream lists, following `nextCursor`.
async fn list_tools(upstream: &Upstream) -> Result<Vec<Tool>, UpstreamError> {
    let never = tokio_util::sync::CancellationToken::new();
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(cursor) => json!({"cursor": cursor}),
            None => json!({}),
        };
        let page = upstream.request("tools/list", params, None, &never).await?;
        let listed = page.get("tools").cloned().unwrap_or(Value::Array(Vec::new()));
        let listed: Vec<Tool> =
            serde_json::from_value(listed).map_err(|e| UpstreamError::Garbage(format!("tools/list: {e}")))?;
        tools.extend(listed);
        cursor = page.get("nextCursor").and_then(Value::as_str).map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    Ok(tools)
}

/// Replaces the offered tools with `tools` under the policy; returns the
/// names now offered.
fn offer(
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
        let route = ToolRoute::from_definition(definition, forwarder(upstream.clone(), original.clone()))
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

/// The handler of one mirrored tool: `tools/call` under the upstream's own
/// name, progress relayed, cancellation passed on.
fn forwarder(
    upstream: Upstream,
    original: String,
) -> impl Fn(ToolCall) -> BoxFuture<'static, ToolOutput> + Send + Sync + 'static {
    move |call: ToolCall| {
        let upstream = upstream.clone();
        let name = original.clone();
        Box::pin(async move {
            let context = call.context().clone();
            let params = json!({"name": name, "arguments": call.arguments()});
            let (progress_tx, mut progress_rx) = mpsc::channel::<Progress>(64);
            let wants_progress = context.progress_token().is_some();
            let cancel = context.cancellation_token().clone();
            let request =
                upstream.request("tools/call", params, wants_progress.then_some(progress_tx), &cancel);
            tokio::pin!(request);
            let outcome = loop {
                tokio::select! {
                    outcome = &mut request => break outcome,
                    Some(update) = progress_rx.recv() => {
                        context.progress(update.progress, update.total, update.message.as_deref()).await;
                    }
                }
            };
            match outcome {
                Ok(result) => match serde_json::from_value::<CallToolResult>(result) {
                    Ok(result) => ToolOutput::Result(result),
                    Err(e) => ToolOutput::Error(McpError::internal(format!(
                        "upstream {:?} answered tools/call with an invalid result: {e}",
                        upstream.name()
                    ))),
                },
                Err(error) => ToolOutput::Error(to_mcp_error(upstream.name(), error)),
            }
        })
    }
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
