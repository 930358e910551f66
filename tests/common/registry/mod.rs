//! Test infrastructure for registry push/pull, one file per program:
//! - `process`: a real local registry (Debian's `docker-registry`) with optional TLS, basic
//!   auth or token auth;
//! - `http`: a minimal raw HTTP/1.1 client (and the wire reading the proxy shares);
//! - `proxy`: a fault-injecting HTTP/1.1 proxy to put in front of a registry;
//! - `token`: a bearer-token server for the registry's token auth;
//! - `base`: the two-platform base the end-to-end tests push for `ko_base`.
//!
//! Everything is bounded: every server listens on 127.0.0.1 only and is stopped on drop,
//! sockets have timeouts, and waiting for a server to come up gives up after a few seconds
//! with its log in the panic message.

// Each test crate uses only some of the re-exports below.
#![allow(unused_imports)]

mod base;
mod http;
mod process;
mod proxy;
mod token;

pub use base::push_two_platform_base;
pub use http::{RawResponse, basic_auth, http_request};
pub use process::{Registry, RegistryOptions, TokenAuth, free_port};
pub use proxy::{Fault, FaultProxy, FaultRule, LoggedRequest, STALL_MAX, WRONG_DIGEST};
pub use token::TokenServer;
