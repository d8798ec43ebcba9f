//! The messages of every MCP revision, from 2024-11-05 to 2026-07-28, as serde types.
//!
//! One module per topic; everything is re-exported here, so
//! `mcp_core::types::CallToolResult` is all a user needs to write. Method names
//! live in [`methods`]; [`ClientRequest`], [`ClientNotification`],
//! [`ServerRequest`] and [`ServerNotification`] turn a method name and its
//! params into a typed message and back.
//!
//! Conventions shared by every type here:
//! - fields are `camelCase` on the wire; optional fields are `Option` and are
//!   left out when `None`;
//! - `_meta` is the `meta` field;
//! - unknown fields are ignored on input;
//! - results carry an optional `resultType` ([`ResultType`]), which the
//!   2026-07-28 revision requires and earlier ones leave out;
//! - a few members are required but nullable (`Task::ttl`,
//!   `DetailedTask::ttl_ms`): they are always written, `null` for `None`.
//!
//! ```
//! use mcp_core::types::{CallToolResult, ClientRequest};
//! use serde_json::json;
//!
//! let req = ClientRequest::from_parts("tools/call", Some(json!({"name": "add", "arguments": {"a": 1}}))).unwrap();
//! let ClientRequest::CallTool(params) = &req else { unreachable!() };
//! assert_eq!(params.name, "add");
//!
//! let result = CallToolResult::text("3");
//! assert_eq!(serde_json::to_value(&result).unwrap(), json!({"content": [{"type": "text", "text": "3"}]}));
//! assert_eq!(result.content[0].as_text(), Some("3"));
//! ```

/// A JSON object.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// The `_meta` member of params, results and entities.
pub type Meta = JsonObject;

mod serde_util;

pub mod base;
pub mod caching;
pub mod capabilities;
pub mod completion;
pub mod content;
pub mod discover;
pub mod elicitation;
pub mod elicitation_schema;
pub mod lifecycle;
pub mod logging;
pub mod messages;
pub mod methods;
pub mod mrtr;
pub mod notifications;
pub mod pagination;
pub mod prompts;
pub mod resources;
pub mod roots;
pub mod sampling;
pub mod subscriptions;
pub mod tasks;
pub mod tasks_extension;
pub mod tools;

pub use base::*;
pub use caching::*;
pub use capabilities::*;
pub use completion::*;
pub use content::*;
pub use discover::*;
pub use elicitation::*;
pub use elicitation_schema::*;
pub use lifecycle::*;
pub use logging::*;
pub use messages::*;
pub use mrtr::*;
pub use notifications::*;
pub use pagination::*;
pub use prompts::*;
pub use resources::*;
pub use roots::*;
pub use sampling::*;
pub use subscriptions::*;
pub use tasks::*;
pub use tasks_extension::*;
pub use tools::*;
