//! Reserved `_meta` keys.
//!
//! ```
//! assert_eq!(mcp_core::meta::PROTOCOL_VERSION, "io.modelcontextprotocol/protocolVersion");
//! ```

/// The protocol version of a modern request (2026-07-28).
pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// The client capabilities declared for a modern request.
pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// The client's `Implementation` on a modern request.
pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// The minimum log level a modern request wants `notifications/message` for.
pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// The server's `Implementation`, added to modern results.
pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// The id of the `subscriptions/listen` stream a notification belongs to.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
/// Links a message to a task (2025-11-25 tasks).
pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";
/// The progress token of a request.
pub const PROGRESS_TOKEN: &str = "progressToken";
