//! Tools shared by the in-process HTTP tests.

use std::sync::atomic::{AtomicBool, Ordering};

use mcp_server::core::types::ElicitRequestParams;
use mcp_server::{Context, tool};
use serde_json::json;

/// Adds two numbers.
#[tool]
pub async fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Asks the user to confirm, and says what they did.
#[tool]
pub async fn confirm(ctx: Context) -> String {
    let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}});
    let schema = schema.as_object().cloned().unwrap_or_default();
    match ctx.elicit("confirm", ElicitRequestParams::form("Proceed?", schema)).await {
        Ok(answer) => serde_json::to_value(answer.action).map(|v| v.to_string()).unwrap_or_default(),
        Err(e) => format!("error: {e}"),
    }
}

/// Set when a [`wait_forever`] call has been dropped (cancelled).
pub static WAITER_STOPPED: AtomicBool = AtomicBool::new(false);

struct SetOnDrop;

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        WAITER_STOPPED.store(true, Ordering::SeqCst);
    }
}

/// Reports progress, then waits until cancelled.
#[tool]
pub async fn wait_forever(ctx: Context) -> &'static str {
    let _stopped = SetOnDrop;
    ctx.progress(1.0, None, None).await;
    ctx.cancellation_token().cancelled().await;
    "cancelled"
}
