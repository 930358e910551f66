//! Talking to registries: references, credentials, a lean HTTP client with auth and
//! retries, shallow pulls by digest and pushes that skip, mount or stream what the
//! registry lacks.

pub mod auth;
pub mod client;
pub mod naming;
pub mod pull;
pub mod push;
pub mod reference;
