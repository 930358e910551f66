//! A lazy push with real Bazel: `ko_push(lazy = True)` of examples/monorepo's foo, built
//! into an nginx HTTP remote cache on 127.0.0.1, then run from a clean output base with
//! Build without the Bytes and `-- --remote-cache URL`: the layers stream from the cache
//! into a real docker-registry and never reach the runner's disk; skopeo reads the image
//! back by its digest. Bazel 4.2.3's `bazel run` materializes no runfiles under
//! `--remote_download_minimal` (the launcher finds no push manifest), so this runs under
//! `--remote_download_toplevel`, which downloads the push target's own output, the push
//! manifest, and nothing else: rko reads every other file from the cache by digest. The same
//! runs against BuildGrid, a gRPC (REAPI) cache: Bazel's `--remote_cache=grpc://…`, and rko's
//! ByteStream reads from it.

mod common;

use std::path::Path;
use std::process::Command;

use common::bazel::{self, CacheServer, Workspace};
use common::buildgrid::BuildGrid;
use common::registry::{Registry, RegistryOptions};
use common::{run_ok, sha256_hex};

/// Every file under `dir` whose name ends in `.tar.gz` (rules_ko's layer blobs).
fn layer_files(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tar.gz"))
        .map(|e| e.path().display().to_string())
        .collect()
}

#[test]
fn bazel_lazy_push_streams_layers_from_the_remote_cache() {
    common::require_tools!("bazel", "go", "docker-registry", "skopeo", "nginx");
    let _serial = bazel::serial();
    let cache = CacheServer::start();
    lazy_push(&cache.url());
}

#[test]
fn bazel_lazy_push_streams_layers_from_a_grpc_cache() {
    common::require_tools!("bazel", "go", "docker-registry", "skopeo", "pyvenv:bgd");
    let _serial = bazel::serial();
    let cache = BuildGrid::start();
    lazy_push(&cache.url());
}

/// The lazy push through the remote cache at `url`, which Bazel and rko both take as is.
fn lazy_push(url: &str) {
    let reg = Registry::start(RegistryOptions::plain());
    let ws = Workspace::copy(&bazel::repo_root().join("examples/monorepo"), "lazy");
    let repo = format!("localhost:{}/lazy/foo", reg.port());
    let build = ws.read("cmd/foo/BUILD.bazel");
    ws.write(
        "cmd/foo/BUILD.bazel",
        &format!(
            "{build}\nko_push(\n    name = \"image.push_lazy\",\n    image = \":image\",\n    \
             lazy = True,\n    remote_tags = [\"latest\"],\n    repository = \"{repo}\",\n)\n"
        ),
    );
    let remote = format!("--remote_cache={url}");

    // A build with the cache fills it (layers included); then the local outputs go.
    ws.ok(&[
        "build",
        &remote,
        "//cmd/foo:image.push_lazy",
        "//cmd/foo:image",
    ]);
    let digest = std::fs::read_to_string(ws.bin("cmd/foo/image.digest")).unwrap();
    let digest = digest.trim().to_string();
    assert!(
        !layer_files(&ws.bin("cmd/foo")).is_empty(),
        "the build made layers"
    );
    ws.ok(&["clean"]);

    // The run downloads metadata only and pushes the layers from the cache.
    let (stdout, stderr) = ws.ok(&[
        "run",
        &remote,
        "--remote_download_toplevel",
        "//cmd/foo:image.push_lazy",
        "--",
        "--remote-cache",
        url,
    ]);
    assert!(
        stdout.contains(&format!("{repo}@{digest}")),
        "{stdout}\n{stderr}"
    );
    let raw = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{repo}:latest")),
    );
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), digest);
    let output_base = ws.dir.join("bazel-out");
    let on_disk = layer_files(&output_base.canonicalize().unwrap());
    assert!(
        on_disk.is_empty(),
        "layer bytes reached the runner: {on_disk:?}"
    );

    // Without the cache, the lazy push says what it needs.
    let err = ws.fail(&[
        "run",
        &remote,
        "--remote_download_toplevel",
        "//cmd/foo:image.push_lazy",
    ]);
    assert!(
        err.contains("pass --remote-cache URL (or set RKO_REMOTE_CACHE)"),
        "{err}"
    );
}
