//! `subscriptions/listen` over HTTP (2026-07-28, SPEC §5.3): a long-lived SSE
//! stream of the change notifications the client asked for.
//!
//! The first event is `notifications/subscriptions/acknowledged`, naming the
//! subset of the request the server honours; then come only notifications of
//! those kinds (`tools`, `prompts` or `resources` `list_changed`, and
//! `resources/updated` for the listed URIs). Each carries the listen request's
//! JSON-RPC id as `_meta["io.modelcontextprotocol/subscriptionId"]`. Nothing
//! else travels on the stream (no progress, no log messages), no event has an
//! id (no resumption in this era), and closing the stream ends the
//! subscription: the server keeps no subscription state.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{Response, StatusCode};
use mcp_core::jsonrpc::{Message, Notification, Request, Response as JsonRpcResponse};
use mcp_core::types::{SubscriptionFilter, SubscriptionsListenRequestParams, methods};
use mcp_core::{McpError, ProtocolVersion, meta};
use serde_json::{Value, json};

use super::reply::{self, KeepAlive};
use crate::changes::{ChangeFeed, Changed, EVERY_LIST};
use crate::server::{Change, Server};

/// Answers a (header-checked) modern `subscriptions/listen` request.
pub(super) fn handle(server: &Server, request: Request, keep_alive: Option<Duration>) -> Response<Body> {
    let requested = match request.params.map(serde_json::from_value::<SubscriptionsListenRequestParams>) {
        Some(Ok(params)) => params.notifications,
        Some(Err(e)) => return invalid(request.id, &e.to_string()),
        None => return invalid(request.id, "subscriptions/listen needs params.notifications"),
    };
    let subscription_id = serde_json::to_value(&request.id).unwrap_or(Value::Null);
    let honoured = honour(server, requested);
    // Subscribe before acknowledging, so no change after the ack is missed.
    let changes = server.change_feed();
    let ack = json!({"notifications": honoured, "_meta": {meta::SUBSCRIPTION_ID: subscription_id}});
    let ack =
        Message::Notification(Notification::new(methods::NOTIFICATION_SUBSCRIPTIONS_ACKNOWLEDGED, Some(ack)));
    let listener = Listener {
        first: Some(reply::frame(&ack)),
        changes,
        filter: honoured,
        subscription_id,
        pending: Vec::new(),
        keep_alive: KeepAlive::new(keep_alive),
        finished: false,
    };
    let body = futures_util::stream::unfold(listener, |mut listener| async move {
        let frame = listener.next().await?;
        Some((Ok::<_, Infallible>(frame), listener))
    });
    reply::sse_response(Body::from_stream(body))
}

fn invalid(id: mcp_core::RequestId, text: &str) -> Response<Body> {
    let error = McpError::invalid_params(text.to_owned()).to_error_object(ProtocolVersion::LATEST);
    let body = mcp_core::jsonrpc::ErrorResponse::new(Some(id), error);
    reply::json(StatusCode::OK, &Message::Error(body))
}

/// The part of `requested` this server can deliver: the kinds whose
/// capability it declares. Task notifications are not offered.
fn honour(server: &Server, requested: SubscriptionFilter) -> SubscriptionFilter {
    let capabilities = server.capabilities();
    let tools = capabilities.tools.and_then(|t| t.list_changed).unwrap_or(false);
    let prompts = capabilities.prompts.and_then(|p| p.list_changed).unwrap_or(false);
    let resources_changed = capabilities.resources.as_ref().and_then(|r| r.list_changed).unwrap_or(false);
    let resources_updated = capabilities.resources.as_ref().and_then(|r| r.subscribe).unwrap_or(false);
    let wanted = |asked: Option<bool>, offered: bool| (asked == Some(true) && offered).then_some(true);
    SubscriptionFilter {
        tools_list_changed: wanted(requested.tools_list_changed, tools),
        prompts_list_changed: wanted(requested.prompts_list_changed, prompts),
        resources_list_changed: wanted(requested.resources_list_changed, resources_changed),
        resource_subscriptions: requested
            .resource_subscriptions
            .filter(|uris| resources_updated && !uris.is_empty()),
        task_ids: None,
    }
}

struct Listener {
    first: Option<Bytes>,
    changes: ChangeFeed,
    filter: SubscriptionFilter,
    subscription_id: Value,
    pending: Vec<Bytes>,
    keep_alive: KeepAlive,
    /// The server went away and the final result was sent.
    finished: bool,
}

impl Listener {
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            self.keep_alive.sent();
            return Some(first);
        }
        if self.finished {
            return None;
        }
        loop {
            if !self.pending.is_empty() {
                self.keep_alive.sent();
                return Some(self.pending.remove(0));
            }
            tokio::select! {
                changed = self.changes.next() => match changed {
                    Some(Changed::One(change)) => self.push(&change),
                    Some(Changed::Missed) => {
                        // Everything listened to may have changed, subscribed resources included.
                        let uris = self.filter.resource_subscriptions.clone().unwrap_or_default();
                        let all = EVERY_LIST.into_iter().chain(uris.into_iter().map(Change::ResourceUpdated));
                        for change in all {
                            self.push(&change);
                        }
                    }
                    None => {
                        // The server is gone: end the subscription with its result.
                        let result = json!({"resultType": "complete",
                            "_meta": {meta::SUBSCRIPTION_ID: self.subscription_id}});
                        self.finished = true;
                        let id = serde_json::from_value(self.subscription_id.clone()).ok()?;
                        return Some(reply::frame(&Message::Response(JsonRpcResponse::new(id, result))));
                    }
                },
                frame = self.keep_alive.beat() => return Some(frame),
            }
        }
    }

    /// Queues the notification `change` becomes on this subscription, if any.
    fn push(&mut self, change: &Change) {
        let filter = &self.filter;
        let tag = json!({meta::SUBSCRIPTION_ID: self.subscription_id});
        let (method, params) = match change {
            Change::Tools if filter.tools_list_changed == Some(true) => {
                (methods::NOTIFICATION_TOOLS_LIST_CHANGED, json!({"_meta": tag}))
            }
            Change::Prompts if filter.prompts_list_changed == Some(true) => {
                (methods::NOTIFICATION_PROMPTS_LIST_CHANGED, json!({"_meta": tag}))
            }
            Change::Resources if filter.resources_list_changed == Some(true) => {
                (methods::NOTIFICATION_RESOURCES_LIST_CHANGED, json!({"_meta": tag}))
            }
            Change::ResourceUpdated(uri)
                if filter.resource_subscriptions.as_ref().is_some_and(|uris| uris.contains(uri)) =>
            {
                (methods::NOTIFICATION_RESOURCES_UPDATED, json!({"uri": uri, "_meta": tag}))
            }
            _ => return,
        };
        let note = Message::Notification(Notification::new(method, Some(params)));
        self.pending.push(reply::frame(&note));
    }
}
