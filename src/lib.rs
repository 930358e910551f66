//! rules_ko's action binary `rko`, as a library: each module owns one stage of turning a Go
//! binary into an OCI image the way ko does, with explicit inputs and deterministic output.
//!
//! The stages import only downwards: `oci` (the spec's nouns) ← `buildinfo` (Go build info
//! from executable bytes) ← `layer` (tar bytes as ko writes them) ← `image` (bases, config,
//! manifest, index) ← `archive` (blob store, tarball, layout, push manifest and its
//! attachments, load) ← `registry` (HTTP client, pull, push, referrers) ← `build` (`rko
//! build`'s one-process pipeline) ← `cli`; `sbom` (SPDX, CycloneDX, provenance) uses only
//! `oci` and `buildinfo`; `resolve` (`ko://` references in YAML) uses only `archive`,
//! beside `build`. `importpath`, `output` and `pool` (a bounded thread pool) are
//! leaves any stage may use; `koconfig` (ko's `.ko.yaml`, its ldflags templates) and
//! `gobuild` over it (running `go list` and `go build` for `rko build ./cmd/app`) are
//! used only by the CLI. Only [`main`] is public, so the compiler reports whatever is
//! unused.

mod archive;
mod build;
mod buildinfo;
mod cli;
mod gobuild;
mod image;
mod importpath;
mod koconfig;
mod layer;
mod oci;
mod output;
mod pool;
mod registry;
mod resolve;
mod sbom;

pub use cli::main;

/// Entry points for the fuzz targets in `fuzz/` (cargo-fuzz builds with `--cfg fuzzing`);
/// absent from every other build.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
