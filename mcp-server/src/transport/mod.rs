//! Transports: how messages reach the server.
//!
//! - [`stdio`]: newline-delimited JSON-RPC on standard input and output.

pub mod stdio;
