//! Lazy pushes: `rko push --remote-cache URL` reads the config and layer blobs that are not
//! on disk from a Bazel remote cache, by digest, straight into the upload of a real
//! docker-registry; skopeo reads the image back. The HTTP protocol against nginx with
//! WebDAV on 127.0.0.1 (as Bazel's `--remote_cache` uses it), gRPC (REAPI ByteStream)
//! against BuildGrid and a loopback stub that logs the metadata it gets and misbehaves on
//! demand. A blob in neither place fails before any manifest is put, naming the blob and
//! the cache; cache headers are never printed.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::bazel::CacheServer;
use common::buildgrid::BuildGrid;
use common::grpc_stub::StubCache;
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
    push_from(w, &cache.url(), SECRET, host)
}

/// `rko push` of `push.json` reading missing blobs from the cache at `url`, with the
/// header `Authorization: <header>`.
fn push_from(w: &Scratch, url: &str, header: &str, host: &str) -> Output {
    let url = url.to_string();
    let header = format!("Authorization={header}");
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
fn a_malformed_header_is_refused_clearly() {
    let w = Scratch::new();
    std::fs::write(w.path("push.json"), "{}").unwrap();
    for url in ["http://127.0.0.1:1", "grpc://127.0.0.1:1"] {
        let o = w.rko(&[
            "push",
            "--manifest",
            "push.json",
            "--remote-cache",
            url,
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
    let o = w.rko(&[
        "push",
        "--manifest",
        "push.json",
        "--remote-cache",
        "grpc://127.0.0.1:1",
        "--remote-header",
        "x-key=s3cret\n",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not valid gRPC metadata") && !err.contains("s3cret"),
        "{err}"
    );
}

/// Builds the image for `host/lazy/app` and removes every blob file, the image manifest
/// too; returns (image digest, [(digest, its former file)]), the manifest last.
fn build_lazy(w: &Scratch, host: &str) -> (String, Vec<(String, PathBuf)>) {
    let (digest, blobs) = build(w, &format!("{host}/lazy/app"));
    assert_eq!(blobs.len(), 3, "config and two layers: {blobs:?}");
    let mut blobs = blobs;
    blobs.push((digest.clone(), w.path("manifest.json")));
    (digest, blobs)
}

fn remove_files(blobs: &[(String, PathBuf)]) {
    for (_, f) in blobs {
        std::fs::remove_file(f).unwrap();
    }
}

fn pushed_digest(host: &str) -> String {
    let raw = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{host}/lazy/app:v1")),
    );
    format!("sha256:{}", common::sha256_hex(raw.as_bytes()))
}

#[test]
fn grpc_blobs_missing_on_disk_stream_from_buildgrid_into_the_registry() {
    common::require_tools!("docker-registry", "skopeo", "pyvenv:bgd");
    let bgd = BuildGrid::start();
    let reg = Registry::start(RegistryOptions::plain());
    let w = Scratch::new();
    let host = reg.host();
    let (digest, blobs) = build_lazy(&w, &host);
    // Into the named instance only: the push must ask that instance.
    let files: Vec<PathBuf> = blobs.iter().map(|b| b.1.clone()).collect();
    bgd.put(BuildGrid::INSTANCE, &files);
    remove_files(&blobs);

    let url = bgd.instance_url(BuildGrid::INSTANCE);
    let o = push_from(&w, &url, StubCache::TOKEN, &host);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}\n{}", bgd.log());
    assert!(
        !err.contains("secret-xyz") && !out.contains("secret-xyz"),
        "the header is never printed: {out}\n{err}"
    );
    assert_eq!(pushed_digest(&host), digest);
    let refs = read_json(w.path("refs.json"));
    let copied = refs["blobs"].as_array().unwrap();
    assert_eq!(
        copied.iter().filter(|b| b[1] == "copied").count(),
        3,
        "{refs}"
    );
    for (d, _) in &blobs[..3] {
        assert!(reg.has_blob("lazy/app", d), "{d}");
    }
    for (_, f) in &blobs {
        assert!(!f.exists(), "nothing is written to disk: {}", f.display());
    }
}

#[test]
fn a_blob_missing_from_buildgrid_fails_naming_it_and_puts_no_manifest() {
    common::require_tools!("docker-registry", "pyvenv:bgd");
    let bgd = BuildGrid::start();
    let reg = Registry::start(RegistryOptions::plain());
    let w = Scratch::new();
    let host = reg.host();
    let (digest, blobs) = build_lazy(&w, &host);
    // The default instance has all but one blob (the config) of the image.
    let (gone, gone_file) = blobs[2].clone();
    let size = std::fs::metadata(&gone_file).unwrap().len();
    let files: Vec<PathBuf> = blobs
        .iter()
        .filter(|b| b.0 != gone)
        .map(|b| b.1.clone())
        .collect();
    bgd.put("", &files);
    remove_files(&blobs);
    let url = bgd.url();
    let o = push_from(&w, &url, StubCache::TOKEN, &host);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("blob {gone} is neither on disk"))
            && err.contains(&format!(
                "nor in the remote cache {url} (NOT_FOUND for blobs/<its sha256>/{size})"
            )),
        "{err}"
    );
    assert!(!err.contains("secret-xyz"), "{err}");
    assert!(
        !reg.has_manifest("lazy/app", &digest),
        "no manifest without its blobs"
    );
    assert!(reg.tag_digest("lazy/app", "v1").is_none());
    assert!(!w.path("refs.json").exists());

    // With the layer in and the image manifest missing, ByteStream Read's NOT_FOUND names
    // the manifest: the layers went up, the manifest was not put.
    // (The same image built again; the named instance has the layers and the config.)
    let other = Scratch::new();
    let (_, blobs2) = build_lazy(&other, &host);
    let files: Vec<PathBuf> = blobs2[..3].iter().map(|b| b.1.clone()).collect();
    bgd.put(BuildGrid::INSTANCE, &files);
    remove_files(&blobs2);
    let url = bgd.instance_url(BuildGrid::INSTANCE);
    let o = push_from(&other, &url, StubCache::TOKEN, &host);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("blob {digest} is neither on disk"))
            && err.contains(&format!("nor in the remote cache {url} (NOT_FOUND for ")),
        "{err}"
    );
    for (d, _) in &blobs2[..3] {
        assert!(reg.has_blob("lazy/app", d), "{d}");
    }
    assert!(!reg.has_manifest("lazy/app", &digest));
    assert!(reg.tag_digest("lazy/app", "v1").is_none());
}

#[test]
fn grpc_headers_arrive_as_metadata_and_bad_streams_fail_before_the_upload_completes() {
    common::require_tools!("docker-registry", "skopeo", "pyvenv:bgd");
    let stub = StubCache::start();
    let reg = Registry::start(RegistryOptions::plain());
    let w = Scratch::new();
    let host = reg.host();
    let (digest, blobs) = build_lazy(&w, &host);
    for (d, f) in &blobs {
        stub.put(d, f);
    }
    remove_files(&blobs);
    let config = &blobs[2].0;

    // A wrong credential: refused, and said so without showing it.
    let o = push_from(&w, &stub.url(), "Bearer wrong-s3cret", &host);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("UNAUTHENTICATED")
            && err.contains("refused the 1 --remote-header value(s) rko sent (not shown)"),
        "{err}"
    );
    assert!(!err.contains("wrong-s3cret"), "{err}");

    // A stream 10 bytes short, then one with a flipped bit: each fails naming the blob,
    // and the registry never completes the upload.
    for (mode, says) in [
        ("short", "ended the stream of blob"),
        ("corrupt", "sent bytes whose sha256 is"),
    ] {
        stub.set_mode(mode);
        let o = push_from(&w, &stub.url(), StubCache::TOKEN, &host);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{mode}: {err}");
        assert!(
            err.contains(says) && err.contains(&stub.url()),
            "{mode}: {err}"
        );
        assert!(!err.contains("secret-xyz"), "{err}");
        for (d, _) in &blobs[..3] {
            assert!(!reg.has_blob("lazy/app", d), "{mode}: {d} was stored");
        }
        assert!(!reg.has_manifest("lazy/app", &digest));
    }

    stub.set_mode("ok");
    let o = push_from(&w, &stub.url(), StubCache::TOKEN, &host);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}\n{}", stub.log());
    assert!(
        !out.contains("secret-xyz") && !err.contains("secret-xyz"),
        "{out}{err}"
    );
    assert_eq!(pushed_digest(&host), digest);
    // Every call carried the header, its name lower-cased as gRPC metadata; the layers
    // were read by ByteStream resource name.
    let calls = stub.calls();
    let hex = config.trim_start_matches("sha256:");
    assert!(
        calls
            .iter()
            .any(|c| c.0.starts_with(&format!("Read blobs/{hex}/"))),
        "{calls:?}"
    );
    for (call, md) in &calls {
        let auth: Vec<_> = md.iter().filter(|m| m.0 == "authorization").collect();
        assert_eq!(auth.len(), 1, "{call}: {md:?}");
    }
    assert!(
        calls.iter().rev().take(4).all(|c| c
            .1
            .contains(&("authorization".into(), StubCache::TOKEN.into()))),
        "{calls:?}"
    );
}

#[test]
fn grpcs_reads_over_tls_trusting_the_ca_file() {
    common::require_tools!("docker-registry", "skopeo", "openssl", "pyvenv:bgd");
    let stub = StubCache::start_tls();
    let reg = Registry::start(RegistryOptions::plain());
    let w = Scratch::new();
    let host = reg.host();
    let (digest, blobs) = build_lazy(&w, &host);
    for (d, f) in &blobs {
        stub.put(d, f);
    }
    remove_files(&blobs);
    let url = stub.url();
    assert!(url.starts_with("grpcs://"), "{url}");
    let header = format!("authorization={}", StubCache::TOKEN);
    let args = |ca: bool| {
        let mut a = vec![
            "push",
            "--manifest",
            "push.json",
            "--insecure-registry",
            &host,
        ];
        a.extend(["--remote-cache", &url, "--remote-header", &header]);
        if ca {
            a.extend(["--ca-file", stub.cert.as_ref().unwrap().to_str().unwrap()]);
        }
        a
    };
    // Its certificate is signed by no CA rko trusts.
    let o = w.rko(&args(false));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("from the remote cache {url}: TLS handshake:"))
            && err.contains("UnknownIssuer"),
        "{err}"
    );
    assert!(!reg.has_manifest("lazy/app", &digest));
    let o = w.rko(&args(true));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}\n{}", stub.log());
    assert!(!err.contains("secret-xyz"), "{err}");
    assert_eq!(pushed_digest(&host), digest);
    assert!(stub.calls().iter().any(|c| c.0.starts_with("Read blobs/")));
}

#[test]
fn an_unreachable_grpc_cache_fails_clearly() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let w = Scratch::new();
    let host = reg.host();
    let (digest, blobs) = build_lazy(&w, &host);
    remove_files(&blobs);
    // A port nothing listens on.
    let url = format!("grpc://127.0.0.1:{}", common::registry::free_port());
    let o = push_from(&w, &url, SECRET, &host);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("from the remote cache {url}: connecting:")),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert!(!reg.has_manifest("lazy/app", &digest));
}
