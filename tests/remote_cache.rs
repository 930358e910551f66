//! Lazy pushes: `rko push --remote-cache URL` reads the config and layer blobs that are not
//! on disk from a Bazel HTTP remote cache (nginx with WebDAV on 127.0.0.1, as Bazel's
//! `--remote_cache` uses it), by digest, straight into the upload of a real
//! docker-registry; skopeo reads the image back. A blob in neither place fails before
//! any manifest is put, naming the blob and the cache; cache headers are never printed.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::bazel::CacheServer;
use common::registry::{Registry, RegistryOptions, http_request};
use common::scratch::Scratch;
use common::{fake_go_binary, read_json, run_ok};

const SECRET: &str = "Bearer cache-s3cret-token";

/// Builds an image (a binary layer and a kodata layer on the embedded base) and its push
/// manifest for `repository`; returns (digest, [(layer/config digest, file)]).
fn build(w: &Scratch, repository: &str) -> (String, Vec<(String, PathBuf)>) {
    std::fs::create_dir_all(w.path("kodata")).unwrap();
    std::fs::write(w.path("kodata/a.txt"), "lazy").unwrap();
    fake_go_binary(&w.path("app"), 62, 1 << 20);
    w.ok(&[
        "layer",
        "binary",
        "--binary",
        "app",
        "--import-path",
        "example.com/lazy/cmd/app",
        "--platform",
        "linux/amd64",
        "-o",
        "bin.tgz",
        "--descriptor",
        "bin.json",
    ]);
    w.ok(&[
        "layer",
        "kodata",
        "--dir",
        "kodata",
        "--import-path",
        "example.com/lazy/cmd/app",
        "-o",
        "kd.tgz",
        "--descriptor",
        "kd.json",
    ]);
    w.ok(&[
        "image",
        "--platform",
        "linux/amd64",
        "--layer",
        "kd.json",
        "--layer",
        "bin.json",
        "--config-out",
        "config.json",
        "--manifest-out",
        "manifest.json",
        "--descriptor-out",
        "desc.json",
        "--digest-out",
        "digest",
    ]);
    w.ok(&[
        "push-manifest",
        "--root",
        "desc.json",
        "--blob",
        "manifest.json",
        "--blob",
        "config.json",
        "--layer",
        "kd.json=kd.tgz",
        "--layer",
        "bin.json=bin.tgz",
        "--repository",
        repository,
        "--tag",
        "v1",
        "-o",
        "push.json",
    ]);
    let digest = std::fs::read_to_string(w.path("digest")).unwrap();
    let pm = read_json(w.path("push.json"));
    let blobs = pm["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| {
            Some((
                b["digest"].as_str()?.to_string(),
                w.path(b["path"].as_str()?),
            ))
        })
        .collect();
    (digest.trim().to_string(), blobs)
}

/// Puts a file into the cache as Bazel does: PUT URL/cas/<hex>.
fn upload(cache: &CacheServer, digest: &str, file: &PathBuf) {
    let hex = digest.trim_start_matches("sha256:");
    let bytes = std::fs::read(file).unwrap();
    let addr = format!("127.0.0.1:{}", cache.port);
    let r = http_request(&addr, "PUT", &format!("/cas/{hex}"), &[], &bytes).unwrap();
    assert!(
        matches!(r.status, 201 | 204),
        "PUT to the cache: {}",
        r.status
    );
}

fn push(w: &Scratch, cache: &CacheServer, host: &str) -> Output {
    let url = cache.url();
    let header = format!("Authorization={SECRET}");
    w.rko(&[
        "push",
        "--manifest",
        "push.json",
        "--insecure-registry",
        host,
        "--remote-cache",
        &url,
        "--remote-header",
        &header,
        "--image-refs",
        "refs.json",
    ])
}

#[test]
fn blobs_missing_on_disk_stream_from_the_cache_into_the_registry() {
    common::require_tools!("docker-registry", "skopeo", "nginx");
    let reg = Registry::start(RegistryOptions::plain());
    let cache = CacheServer::start();
    let w = Scratch::new();
    let host = reg.host();
    let (digest, blobs) = build(&w, &format!("{host}/lazy/app"));
    assert_eq!(
        blobs.len(),
        3,
        "config, kodata and binary layers: {blobs:?}"
    );

    // The runner has none of them, not even the image manifest (as under
    // --remote_download_minimal); the cache has all.
    let blobs: Vec<_> = blobs
        .into_iter()
        .chain([(digest.clone(), w.path("manifest.json"))])
        .collect();
    for (d, f) in &blobs {
        upload(&cache, d, f);
        std::fs::remove_file(f).unwrap();
    }
    let o = push(&w, &cache, &host);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        !err.contains("s3cret"),
        "the cache header is never printed: {err}"
    );
    let raw = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{host}/lazy/app:v1")),
    );
    assert_eq!(
        format!("sha256:{}", common::sha256_hex(raw.as_bytes())),
        digest
    );
    let refs = read_json(w.path("refs.json"));
    let copied = refs["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b[1] == "copied")
        .count();
    assert_eq!(copied, 3, "{refs}");
    for (d, _) in &blobs[..3] {
        assert!(reg.has_blob("lazy/app", d), "{d}");
    }
    // Nothing was written to disk on the way.
    for (_, f) in &blobs {
        assert!(!f.exists(), "{}", f.display());
    }
}

#[test]
fn a_blob_in_neither_place_fails_naming_it_and_puts_no_manifest() {
    common::require_tools!("docker-registry", "nginx");
    let reg = Registry::start(RegistryOptions::plain());
    let cache = CacheServer::start();
    let w = Scratch::new();
    let host = reg.host();
    let (digest, blobs) = build(&w, &format!("{host}/lazy/app"));
    // The cache has all but the binary layer; the disk has none.
    let (gone, _) = blobs.last().unwrap().clone();
    for (d, f) in &blobs {
        if *d != gone {
            upload(&cache, d, f);
        }
        std::fs::remove_file(f).unwrap();
    }
    let o = push(&w, &cache, &host);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("blob {gone} is neither on disk"))
            && err.contains(&format!("nor in the remote cache {}", cache.url())),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert!(
        !reg.has_manifest("lazy/app", &digest),
        "no manifest without its blobs"
    );
    assert!(reg.tag_digest("lazy/app", "v1").is_none());
    assert!(!w.path("refs.json").exists());

    // Without --remote-cache, a missing file is refused before anything is sent.
    let o = w.rko(&[
        "push",
        "--manifest",
        "push.json",
        "--insecure-registry",
        &host,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("but no file is there"), "{err}");
}

#[test]
fn a_grpc_cache_or_a_malformed_header_is_refused_clearly() {
    let w = Scratch::new();
    std::fs::write(w.path("push.json"), "{}").unwrap();
    let o = w.rko(&[
        "push",
        "--manifest",
        "push.json",
        "--remote-cache",
        "grpc://127.0.0.1:1",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("a gRPC (REAPI) cache is not supported yet"),
        "{err}"
    );
    let o = w.rko(&[
        "push",
        "--manifest",
        "push.json",
        "--remote-cache",
        "http://127.0.0.1:1",
        "--remote-header",
        "Authorization s3cret",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("expected NAME=VALUE") && !err.contains("s3cret"),
        "{err}"
    );
}
