//! rules_ko's action binary `rko`, as a library: each module owns one part of turning a Go
//! binary into an OCI image the way ko does, with explicit inputs and deterministic output.

pub mod base;
pub mod buildinfo;
pub mod cli;
pub mod digest;
pub mod image;
pub mod importpath;
pub mod layer;
pub mod media;
pub mod output;
pub mod platform;
pub mod reference;
pub mod registry;
