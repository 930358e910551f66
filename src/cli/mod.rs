//! The `rko` command line: one subcommand per build action, each taking explicit inputs and
//! writing its outputs all-or-nothing. Each subcommand's file turns its flags into library
//! types and makes one library call; the flag groups several commands share live in
//! [`args`]. No subcommand file uses another.

mod argfile;
mod args;
mod build;
mod buildinfo;
mod image;
mod index;
mod layer;
mod load;
mod provenance;
mod pull;
mod push;
mod resolve;
mod sbom;
mod stdout;
mod tarball;
mod worker;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// rko: turn Go binaries into OCI images the way ko does, as deterministic build actions.
#[derive(Debug, Parser)]
#[command(name = "rko", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Make a layer: the Go binary (`binary`) or the kodata tree (`kodata`).
    #[command(subcommand)]
    Layer(layer::LayerCommand),
    /// Make an image's config, manifest and descriptor from a base and layer descriptors.
    Image(image::ImageArgs),
    /// Make an image index from per-platform image descriptors.
    Index(index::IndexArgs),
    /// Write an image or index with its blobs as one tar for `docker load` and OCI tools.
    Tarball(tarball::TarballArgs),
    /// Write an image or index with its blobs as an OCI image layout directory.
    Layout(tarball::LayoutArgs),
    /// Load an image into docker or podman (for an index, one platform's image).
    Load(load::LoadArgs),
    /// Pull a base pinned by digest into an OCI layout: manifests and configs only, unless --eager.
    Pull(pull::PullArgs),
    /// Write a push manifest: where to push, and where every blob's bytes are.
    PushManifest(push::PushManifestArgs),
    /// Push an image or index from a push manifest, skipping or mounting what the registry has.
    Push(push::PushArgs),
    /// Build an image from a Go binary in one go, like `ko build` (prints the digest).
    Build(build::BuildArgs),
    /// Replace `ko://IMPORTPATH` in YAML with the images push manifests name, like `ko resolve`.
    Resolve(resolve::ResolveArgs),
    /// Print a Go binary's build info as `go version -m` does, read from the binary alone.
    Buildinfo(buildinfo::BuildinfoArgs),
    /// Write an image's SBOM (SPDX 2.3 or CycloneDX 1.6 JSON) from its Go binary's build info.
    Sbom(sbom::SbomArgs),
    /// Write an image's SLSA v1 provenance as an in-toto Statement.
    Provenance(provenance::ProvenanceArgs),
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Layer(c) => layer::run(c),
        Command::Image(a) => image::run(a),
        Command::Index(a) => index::run(a),
        Command::Tarball(a) => tarball::run_tarball(a),
        Command::Layout(a) => tarball::run_layout(a),
        Command::Load(a) => load::run(a),
        Command::Pull(a) => pull::run(a),
        Command::PushManifest(a) => push::run_push_manifest(a),
        Command::Push(a) => push::run_push(a),
        Command::Build(a) => build::run(a),
        Command::Resolve(a) => resolve::run(a),
        Command::Buildinfo(a) => buildinfo::run(a),
        Command::Sbom(a) => sbom::run(a),
        Command::Provenance(a) => provenance::run(a),
    }
}

/// `rko`: expands `@file` arguments, parses the command line, runs the action; on failure
/// prints the error chain and exits non-zero (2 for bad usage, an unreadable parameter file
/// included; 1 for a failed action). `rko --persistent_worker` serves Bazel's worker
/// protocol instead (see [`worker`]).
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() == 2 && args[1] == "--persistent_worker" {
        return worker::serve();
    }
    ExitCode::from(run_args(args))
}

/// One command line, program name first, run to its exit status: what `rko ARGS…` does as
/// a process, and what each persistent-worker request does in one.
fn run_args(args: Vec<std::ffi::OsString>) -> u8 {
    let args = match argfile::expand(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rko: error: {e:#}");
            return 2;
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and --version print to stdout and succeed; usage errors go to stderr, 2.
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rko: error: {e:#}");
            1
        }
    }
}
