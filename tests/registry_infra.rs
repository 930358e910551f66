//! Checks the registry test infrastructure (tests/common/registry/) against real tools:
//! a local `docker-registry`, with TLS and basic auth, written to and read by skopeo, and
//! the fault-injecting proxy driven by raw HTTP requests.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::registry::{
    Fault, FaultProxy, FaultRule, Registry, RegistryOptions, basic_auth, http_request,
};
use common::{parse_json, rko_ok, run_fail, run_ok};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// `rko build /bin/true --allow-non-go` into `dir/T.tar`; returns the tarball and the
/// image digest.
fn build_tarball(dir: &Path) -> (PathBuf, String) {
    let tar = dir.join("T.tar");
    let out = rko_ok([
        "build".as_ref(),
        "/bin/true".as_ref(),
        "--allow-non-go".as_ref(),
        "--import-path".as_ref(),
        "example.com/t".as_ref(),
        "--tarball".as_ref(),
        tar.as_os_str(),
    ]);
    let digest = out.lines().last().unwrap_or("").trim().to_string();
    assert!(digest.starts_with("sha256:"), "rko build printed {out:?}");
    (tar, digest)
}

/// skopeo isolated from the user's auth file, registries.conf and signature policy.
fn skopeo(tmp: &Path) -> Command {
    let conf = tmp.join("registries.conf");
    if !conf.exists() {
        std::fs::write(&conf, "").unwrap();
    }
    let mut cmd = Command::new("skopeo");
    cmd.arg("--insecure-policy")
        .arg("--registries-conf")
        .arg(&conf)
        .env("REGISTRY_AUTH_FILE", tmp.join("auth.json"));
    cmd
}

fn layer_digests(inspect: &serde_json::Value) -> Vec<String> {
    inspect["Layers"]
        .as_array()
        .expect("Layers")
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn plain_registry_skopeo_push_and_inspect() {
    common::require_tools!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let tmp = TempDir::new().unwrap();
    let (tar, digest) = build_tarball(tmp.path());
    assert_eq!(reg.blob_count(), 0);

    let dest = format!("docker://{}/t:1", reg.host());
    run_ok(
        skopeo(tmp.path())
            .args(["copy", "--dest-tls-verify=false", "--preserve-digests"])
            .arg(format!("oci-archive:{}", tar.display()))
            .arg(&dest),
    );
    let inspect = parse_json(&run_ok(skopeo(tmp.path()).args([
        "inspect",
        "--tls-verify=false",
        &dest,
    ])));
    assert_eq!(inspect["Digest"], digest.as_str(), "{}", reg.log());
    let layers = layer_digests(&inspect);
    assert!(!layers.is_empty());
    for l in &layers {
        assert!(reg.has_blob("t", l), "layer {l} not in the registry");
    }
    let raw = parse_json(&run_ok(skopeo(tmp.path()).args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &dest,
    ])));
    let config = raw["config"]["digest"].as_str().unwrap();
    assert!(reg.has_blob("t", config));
    assert!(!reg.has_blob("t", &sha256(b"nope")));
    assert!(!reg.has_blob("other", config));
    assert!(reg.has_manifest("t", &digest));
    assert_eq!(reg.tag_digest("t", "1").as_deref(), Some(digest.as_str()));
    assert_eq!(reg.tag_digest("t", "2"), None);
    // Layers, config and manifest.
    assert_eq!(reg.blob_count(), layers.len() + 2);
    assert_eq!(reg.pending_uploads("t"), 0);
    assert!(reg.ca_cert().is_none() && reg.credentials().is_none());
}

#[test]
fn tls_auth_registry_with_skopeo() {
    common::require_tools!("docker-registry", "openssl", "htpasswd", "skopeo");
    let reg = Registry::start(RegistryOptions::tls_auth("alice", "s3cret"));
    let tmp = TempDir::new().unwrap();
    let (tar, digest) = build_tarball(tmp.path());
    let ca = reg.ca_cert().unwrap();
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let cert_dir = reg.cert_dir().unwrap();
    assert!(cert_dir.join("ca.crt").is_file());
    assert_eq!(
        reg.credentials(),
        Some(("alice".to_string(), "s3cret".to_string()))
    );
    let src = format!("oci-archive:{}", tar.display());
    let dest = format!("docker://{}/sec/t:1", reg.host());

    let err = run_fail(
        skopeo(tmp.path())
            .args(["copy", "--dest-creds", "alice:wrong", "--dest-cert-dir"])
            .arg(&cert_dir)
            .arg(&src)
            .arg(&dest),
    );
    let lower = err.to_lowercase();
    assert!(
        lower.contains("unauthorized") || lower.contains("401"),
        "wrong credentials: {err}"
    );
    // No credentials at all.
    let err = run_fail(
        skopeo(tmp.path())
            .args(["copy", "--dest-cert-dir"])
            .arg(&cert_dir)
            .arg(&src)
            .arg(&dest),
    );
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );
    // The certificate is not trusted by default.
    let err = run_fail(
        skopeo(tmp.path())
            .args(["copy", "--dest-creds", &reg.creds_arg().unwrap()])
            .arg(&src)
            .arg(&dest),
    );
    assert!(err.contains("certificate"), "{err}");
    assert_eq!(reg.blob_count(), 0);

    run_ok(
        skopeo(tmp.path())
            .args(["copy", "--preserve-digests", "--dest-creds", "alice:s3cret"])
            .arg("--dest-cert-dir")
            .arg(&cert_dir)
            .arg(&src)
            .arg(&dest),
    );
    let inspect = parse_json(&run_ok(
        skopeo(tmp.path())
            .args(["inspect", "--creds", "alice:s3cret", "--cert-dir"])
            .arg(&cert_dir)
            .arg(&dest),
    ));
    assert_eq!(inspect["Digest"], digest.as_str());
    for l in layer_digests(&inspect) {
        assert!(reg.has_blob("sec/t", &l));
    }
    assert_eq!(
        reg.tag_digest("sec/t", "1").as_deref(),
        Some(digest.as_str())
    );
}

#[test]
fn plain_registry_with_basic_auth() {
    common::require_tools!("docker-registry", "htpasswd");
    let reg = Registry::start(RegistryOptions {
        auth: Some(("bob".into(), "pw".into())),
        ..RegistryOptions::default()
    });
    let r = http_request(&reg.host(), "GET", "/v2/", &[], b"").unwrap();
    assert_eq!(r.status, 401, "{}", reg.log());
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Basic")),
        "{:?}",
        r.headers
    );
    let bad = basic_auth("bob", "nope");
    let r = http_request(&reg.host(), "GET", "/v2/", &[("Authorization", &bad)], b"").unwrap();
    assert_eq!(r.status, 401);
    let good = basic_auth("bob", "pw");
    let r = http_request(&reg.host(), "GET", "/v2/", &[("Authorization", &good)], b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"{}");
}

#[test]
fn registry_is_killed_on_drop() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let host = reg.host();
    let storage = reg.storage_dir();
    assert!(http_request(&host, "GET", "/v2/", &[], b"").is_ok());
    assert!(reg.log().contains("listening on"));
    drop(reg);
    assert!(http_request(&host, "GET", "/v2/", &[], b"").is_err());
    assert!(!storage.exists());
}

/// `POST /v2/REPO/blobs/uploads/` through `addr`: the status and the upload's
/// `Location` as a path (the registry's URL must point back at `addr`).
fn start_upload(addr: &str, repo: &str) -> std::io::Result<(u16, Option<String>)> {
    let r = http_request(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    )?;
    let loc = r.header("location").map(|l| strip_origin(addr, l));
    Ok((r.status, loc))
}

fn strip_origin(addr: &str, url: &str) -> String {
    url.strip_prefix(&format!("http://{addr}"))
        .unwrap_or_else(|| panic!("Location {url} does not point at {addr}"))
        .to_string()
}

/// Completes the upload at `loc` with all of `data` (`PUT LOC?digest=`, monolithic).
fn put_blob(addr: &str, loc: &str, data: &[u8]) -> std::io::Result<u16> {
    finish_upload(addr, loc, &sha256(data), data)
}

/// `PUT LOC?digest=DIGEST` with `data` (the rest of the blob, maybe nothing).
fn finish_upload(addr: &str, loc: &str, digest: &str, data: &[u8]) -> std::io::Result<u16> {
    let sep = if loc.contains('?') { '&' } else { '?' };
    let target = format!("{loc}{sep}digest={digest}");
    let len = data.len().to_string();
    http_request(
        addr,
        "PUT",
        &target,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", &len),
        ],
        data,
    )
    .map(|r| r.status)
}

/// A whole monolithic upload; returns the PUT's status.
fn upload_blob(addr: &str, repo: &str, data: &[u8]) -> std::io::Result<u16> {
    let (status, loc) = start_upload(addr, repo)?;
    assert_eq!(status, 202);
    put_blob(addr, &loc.unwrap(), data)
}

#[test]
fn proxy_injects_statuses_and_forwards_the_rest() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = FaultProxy::for_registry(
        &reg,
        vec![
            FaultRule::first("POST", "/blobs/uploads/", Fault::Status(500, None)),
            FaultRule::nth("GET", "/v2/", 2, Fault::Status(503, Some(7))),
            FaultRule::first("HEAD", "/blobs/", Fault::Status(429, Some(1))),
        ],
    );
    let p = proxy.addr();
    assert_ne!(p, reg.host());

    let r = http_request(&p, "GET", "/v2/", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Docker-Distribution-Api-Version"),
        Some("registry/2.0")
    );
    assert_eq!(r.header("connection"), Some("close"));
    let r = http_request(&p, "GET", "/v2/", &[], b"").unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert!(r.body.is_empty());
    assert_eq!(
        http_request(&p, "GET", "/v2/", &[], b"").unwrap().status,
        200
    );

    // Monolithic upload: the first POST fails, the second and the PUT with the body go
    // through.
    let data = b"hello through the proxy".repeat(1000);
    assert_eq!(start_upload(&p, "t").unwrap(), (500, None));
    assert_eq!(reg.pending_uploads("t"), 0);
    assert_eq!(upload_blob(&p, "t", &data).unwrap(), 201, "{}", reg.log());
    assert!(reg.has_blob("t", &sha256(&data)));

    let head = format!("/v2/t/blobs/{}", sha256(&data));
    let r = http_request(&p, "HEAD", &head, &[], b"").unwrap();
    assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
    let r = http_request(&p, "HEAD", &head, &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("23000"));
    assert!(r.body.is_empty());

    // Chunked upload: POST, PATCH with a chunked body, PUT; the registry's Location
    // points back at the proxy because the Host header is forwarded.
    let (status, loc) = start_upload(&p, "t").unwrap();
    assert_eq!(status, 202);
    let loc = loc.unwrap();
    let blob = b"chunk one|chunk two".to_vec();
    let chunked = b"a\r\nchunk one|\r\n9\r\nchunk two\r\n0\r\n\r\n";
    let r = http_request(
        &p,
        "PATCH",
        &loc,
        &[
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", "application/octet-stream"),
        ],
        chunked,
    )
    .unwrap();
    assert_eq!(r.status, 202, "{}", reg.log());
    let loc = strip_origin(&p, r.header("location").unwrap());
    assert_eq!(
        finish_upload(&p, &loc, &sha256(&blob), b"").unwrap(),
        201,
        "{}",
        reg.log()
    );
    assert!(reg.has_blob("t", &sha256(&blob)));

    let log = proxy.request_log();
    let statuses: Vec<(&str, u16)> = log.iter().map(|(m, _, s)| (m.as_str(), *s)).collect();
    assert_eq!(
        statuses,
        [
            ("GET", 200),
            ("GET", 503),
            ("GET", 200),
            ("POST", 500),
            ("POST", 202),
            ("PUT", 201),
            ("HEAD", 429),
            ("HEAD", 200),
            ("POST", 202),
            ("PATCH", 202),
            ("PUT", 201),
        ],
        "{}",
        proxy.log_text()
    );
    assert_eq!(log[0].1, "/v2/");
    assert_eq!(log[3].1, "/v2/t/blobs/uploads/", "the query is not logged");
    assert_eq!(proxy.count("POST", "/blobs/uploads/"), 3);
    assert_eq!(proxy.count("PUT", "/blobs/uploads/"), 2);
}

#[test]
fn proxy_drops_connections() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = FaultProxy::for_registry(
        &reg,
        vec![
            FaultRule::first("PUT", "/blobs/uploads/", Fault::DropMidBody),
            FaultRule::nth("PUT", "/blobs/uploads/", 2, Fault::DropBeforeResponse),
        ],
    );
    let p = proxy.addr();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();

    // Mid-body: the client gets no response and the registry never sees the request.
    let (_, loc) = start_upload(&p, "t").unwrap();
    let err = put_blob(&p, &loc.unwrap(), &data).unwrap_err();
    eprintln!("mid-body drop seen by the client as: {err}");
    assert!(!reg.has_blob("t", &sha256(&data)));
    assert_eq!(reg.blob_count(), 0);
    assert_eq!(reg.pending_uploads("t"), 1, "the upload stays open");

    // Before the response: the registry stores the blob, the client gets no answer.
    let (_, loc) = start_upload(&p, "t").unwrap();
    let err = put_blob(&p, &loc.unwrap(), &data).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    assert!(reg.has_blob("t", &sha256(&data)));

    // Then things work again.
    let small = b"small".to_vec();
    assert_eq!(upload_blob(&p, "t", &small).unwrap(), 201);
    let entries = proxy.request_log();
    let log: Vec<(&str, u16)> = entries.iter().map(|(m, _, s)| (m.as_str(), *s)).collect();
    assert_eq!(
        log,
        [
            ("POST", 202),
            ("PUT", 0),
            ("POST", 202),
            ("PUT", 0),
            ("POST", 202),
            ("PUT", 201)
        ],
        "{}",
        proxy.log_text()
    );
}

#[test]
fn proxy_with_skopeo() {
    common::require_tools!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let tmp = TempDir::new().unwrap();
    let (tar, digest) = build_tarball(tmp.path());
    let src = format!("oci-archive:{}", tar.display());

    // Pass-through: a real client's whole push works through the proxy.
    let proxy = FaultProxy::for_registry(&reg, vec![]);
    run_ok(
        skopeo(tmp.path())
            .args(["copy", "--dest-tls-verify=false", "--preserve-digests"])
            .arg(&src)
            .arg(format!("docker://{}/t:1", proxy.addr())),
    );
    assert_eq!(reg.tag_digest("t", "1").as_deref(), Some(digest.as_str()));
    let log = proxy.log_text();
    assert!(log.contains("201 PUT /v2/t/manifests/1"), "{log}");
    assert!(
        proxy
            .request_log()
            .iter()
            .all(|(_, _, s)| *s != 0 && *s < 500)
    );
    drop(proxy);

    // With an injected 500 on the first upload start: the proxy reports it; whether
    // skopeo retries is skopeo's business.
    let proxy = FaultProxy::for_registry(
        &reg,
        vec![FaultRule::first(
            "POST",
            "/blobs/uploads/",
            Fault::Status(500, None),
        )],
    );
    let out = skopeo(tmp.path())
        .args(["copy", "--dest-tls-verify=false", "--retry-times", "2"])
        .arg(&src)
        .arg(format!("docker://{}/u:1", proxy.addr()))
        .output()
        .unwrap();
    eprintln!(
        "skopeo with a 500 fault: {}\n{}",
        out.status,
        proxy.log_text()
    );
    let log = proxy.request_log();
    let first_post = log
        .iter()
        .find(|(m, p, _)| m == "POST" && p.contains("/blobs/uploads/"))
        .expect("a POST");
    assert_eq!(first_post.2, 500, "{}", proxy.log_text());
}

#[test]
fn proxy_stops_on_drop() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = FaultProxy::start(&reg.host(), vec![]);
    proxy.add_fault(FaultRule::always("GET", "/v2/", Fault::Status(418, None)));
    let addr = proxy.addr();
    assert_eq!(
        http_request(&addr, "GET", "/v2/", &[], b"").unwrap().status,
        418
    );
    assert_eq!(
        http_request(&addr, "GET", "/v2/", &[], b"").unwrap().status,
        418
    );
    proxy.clear_faults();
    assert_eq!(
        http_request(&addr, "GET", "/v2/", &[], b"").unwrap().status,
        200
    );
    let t = Instant::now();
    drop(proxy);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(http_request(&addr, "GET", "/v2/", &[], b"").is_err());
}
