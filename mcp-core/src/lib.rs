//! # mcp-core
//!
//! The vocabulary of the Model Context Protocol, with no I/O: JSON-RPC 2.0
//! framing ([`jsonrpc`]), protocol revisions and negotiation ([`version`]),
//! error codes ([`error`]), reserved `_meta` keys ([`meta`]), the message
//! types of every revision from 2024-11-05 to 2026-07-28 ([`types`]), and the
//! authenticated principal handed from an auth layer to handlers ([`identity`]).
//!
//! ```
//! use mcp_core::jsonrpc::{parse, Incoming, Message};
//! use mcp_core::types::CallToolRequestParams;
//!
//! let bytes = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}"#;
//! let Ok(Incoming::Single(Message::Request(req))) = parse(bytes) else { unreachable!() };
//! let params: CallToolRequestParams = serde_json::from_value(req.params.unwrap()).unwrap();
//! assert_eq!(params.name, "add");
//! ```

// Unit tests may unwrap: a panic is the failure report.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod error;
pub mod identity;
pub mod jsonrpc;
pub mod meta;
pub mod types;
pub mod version;

pub use error::McpError;
pub use identity::Identity;
pub use jsonrpc::{Message, Request, RequestId};
pub use version::{Era, ProtocolVersion};
