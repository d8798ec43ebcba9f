//! Transports: how messages reach the server.
//!
//! - [`stdio`]: newline-delimited JSON-RPC on standard input and output.
//! - [`http`]: Streamable HTTP, both protocol eras on one endpoint.

pub mod http;
pub mod stdio;
