//! Pushing and pulling against real registries (Debian's docker-registry on 127.0.0.1):
//! plain HTTP, TLS with basic auth, a second registry as the source of base blobs, the same
//! registry for cross-repository mounts, and a fault-injecting proxy for dropped
//! connections, 500s and 429s. Every image pushed is read back with skopeo.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::registry::{Fault, FaultProxy, FaultRule, Registry, RegistryOptions, TokenServer};
use common::{RKO, fake_go_binary, read_json, run_ok};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let e = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        fake_go_binary(&e.path("app"), 62, 3 << 20);
        // No credentials unless a test writes them.
        std::fs::create_dir_all(e.path("docker")).unwrap();
        e
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn rko(&self, args: &[&str]) -> Command {
        let mut c = Command::new(RKO);
        c.args(args)
            .current_dir(self.dir.path())
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("REGISTRY_AUTH_FILE", self.path("docker/none.json"))
            .env_remove("KO_DOCKER_REPO");
        c
    }
    fn ok(&self, args: &[&str]) -> (String, String) {
        let o = self.rko(args).output().unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert!(o.status.success(), "rko {args:?} failed:\n{err}");
        (out, err)
    }
    fn fails(&self, args: &[&str], expect: &[&str]) -> String {
        let o = self.rko(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "rko {args:?} should fail: {err}");
        for e in expect {
            assert!(err.contains(e), "expected {e:?} in: {err}");
        }
        err
    }
    fn login(&self, host: &str, user: &str, pass: &str) {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let cfg = serde_json::json!({"auths": {host: {"auth": auth}}});
        std::fs::write(self.path("docker/config.json"), cfg.to_string()).unwrap();
    }
}

fn skopeo_digest(reference: &str, extra: &[&str]) -> String {
    let out = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw"])
            .args(extra)
            .arg(format!("docker://{reference}")),
    );
    format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(out.as_bytes()))
    )
}

/// Builds and pushes with `rko build --push`; returns the pushed `repo@digest`.
fn build_push(e: &Env, import_path: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "build",
        "app",
        "--import-path",
        import_path,
        "--push",
        "--image-refs",
        "refs.json",
    ];
    args.extend_from_slice(extra);
    let (out, err) = e.ok(&args);
    (out.trim().to_string(), err)
}

fn outcome_counts(e: &Env) -> (usize, usize, usize, usize, u64) {
    let refs = read_json(e.path("refs.json"));
    let blobs = refs["blobs"].as_array().unwrap();
    let count = |o: &str| blobs.iter().filter(|b| b[1] == o).count();
    (
        count("existed"),
        count("mounted"),
        count("uploaded"),
        count("copied"),
        refs["bytesSent"].as_u64().unwrap(),
    )
}

#[test]
fn push_to_plain_registry_reads_back_and_repush_sends_nothing() {
    common::require_tools!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let e = Env::new();
    let host = reg.host();
    let repo = format!("{host}/team");
    let args = [
        "--repository",
        repo.as_str(),
        "--insecure-registry",
        host.as_str(),
        "--push-tag",
        "v1",
    ];
    let (reference, _) = build_push(&e, "example.com/svc/cmd/api", &args);
    // ko's default naming: <repo>/<base>-<md5(import path)>.
    let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(
        b"example.com/svc/cmd/api",
    ));
    let name = format!("{repo}/api-{md5}");
    assert!(
        reference.starts_with(&format!("{name}@sha256:")),
        "{reference}"
    );
    let digest = reference.split('@').nth(1).unwrap().to_string();
    // skopeo reads what the build computed.
    assert_eq!(
        skopeo_digest(&format!("{name}:v1"), &["--tls-verify=false"]),
        digest
    );
    let layout = e.path("copy");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{name}@{digest}"))
            .arg(format!("oci:{}:x", layout.display())),
    );
    let idx = read_json(layout.join("index.json"));
    assert_eq!(idx["manifests"][0]["digest"], digest.as_str());
    let (_, _, uploaded, _, sent) = outcome_counts(&e);
    assert_eq!(uploaded, 4, "config + static + kodata + binary layers");
    assert!(sent > 1 << 20);
    // Again: every blob is already there; nothing is sent.
    build_push(&e, "example.com/svc/cmd/api", &args);
    let (existed, mounted, uploaded, copied, sent) = outcome_counts(&e);
    assert_eq!((existed, mounted, uploaded, copied, sent), (4, 0, 0, 0, 0));
    assert_eq!(
        reg.tag_digest(&format!("team/api-{md5}"), "v1").as_deref(),
        Some(digest.as_str())
    );
    // Chunked uploads (1 MiB PATCHes with Content-Range) give the same image.
    let (chunked, _) = build_push(
        &e,
        "example.com/svc/cmd/api",
        &[
            "--repository",
            &format!("{host}/chunked"),
            "--naming",
            "bare",
            "--insecure-registry",
            &host,
            "--chunk-size",
            "1048576",
        ],
    );
    assert_eq!(chunked.split('@').nth(1).unwrap(), digest);
    assert_eq!(
        skopeo_digest(&format!("{host}/chunked:latest"), &["--tls-verify=false"]),
        digest
    );
    assert_eq!(outcome_counts(&e).2, 4);
    // A registry on this machine speaking plain HTTP needs no flag (as with docker and ko).
    let local = format!("localhost:{}/team", reg.port());
    let (local_ref, _) = build_push(&e, "example.com/svc/cmd/api", &["--repository", &local]);
    assert!(
        local_ref.starts_with(&format!("{local}/api-")),
        "{local_ref}"
    );
}

/// Builds an image with the build actions as a build system runs them, into `gen/image/`
/// (paths relative to the test's directory, as Buck2's buck-out paths are); returns the
/// image's digest.
fn build_actions(e: &Env) -> String {
    std::fs::create_dir_all(e.path("gen/image")).unwrap();
    e.ok(&[
        "layer",
        "binary",
        "--binary",
        "app",
        "--import-path",
        "example.com/svc/cmd/api",
        "--platform",
        "linux/amd64",
        "-o",
        "gen/image/bin.tgz",
        "--descriptor",
        "gen/image/bin.json",
    ]);
    e.ok(&[
        "image",
        "--platform",
        "linux/amd64",
        "--layer",
        "gen/image/bin.json",
        "--config-out",
        "gen/image/config.json",
        "--manifest-out",
        "gen/image/manifest.json",
        "--descriptor-out",
        "gen/image/desc.json",
        "--digest-out",
        "gen/image/digest",
    ]);
    std::fs::read_to_string(e.path("gen/image/digest"))
        .unwrap()
        .trim()
        .to_string()
}

/// The `rko push-manifest` arguments for the image of `build_actions`, written to `out`.
fn push_manifest_args(repository: &str, out: &str) -> Vec<String> {
    [
        "push-manifest",
        "--root",
        "gen/image/desc.json",
        "--blob",
        "gen/image/manifest.json",
        "--blob",
        "./gen/image/config.json",
        "--layer",
        "gen/image/bin.json=gen/image/bin.tgz",
        "--repository",
        repository,
        "--tag",
        "v1",
        "-o",
        out,
    ]
    .map(String::from)
    .to_vec()
}

/// Regression: blob paths in a push manifest resolved against the working directory, so
/// `buck2 run` (in the user's directory, with the manifest's absolute path) and `bazel run`
/// (in the runfiles tree) could push only from the directory the build ran in. They now
/// resolve against the manifest's directory.
#[test]
fn push_manifest_pushes_from_any_working_directory() {
    common::require_tools!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let e = Env::new();
    let host = reg.host();
    let digest = build_actions(&e);
    let repo = format!("{host}/team/api");
    std::fs::create_dir_all(e.path("gen/push")).unwrap();
    let args = push_manifest_args(&repo, "gen/push/image.push.json");
    e.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // Every file is recorded relative to the manifest's directory.
    let pm = read_json(e.path("gen/push/image.push.json"));
    let mut paths: Vec<&str> = std::iter::once(&pm["root"])
        .chain(pm["manifests"].as_array().unwrap())
        .chain(pm["blobs"].as_array().unwrap())
        .filter_map(|b| b["path"].as_str())
        .collect();
    paths.sort();
    paths.dedup();
    assert_eq!(
        paths,
        [
            "../image/bin.tgz",
            "../image/config.json",
            "../image/manifest.json"
        ],
        "{pm}"
    );
    // An absolute -o for the same directory records the same paths.
    let abs_out = e.path("gen/push/abs.push.json");
    let args = push_manifest_args(&repo, abs_out.to_str().unwrap());
    e.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(read_json(&abs_out), pm);

    // Push from an unrelated directory, naming the manifest by its absolute path.
    let elsewhere = tempfile::tempdir().unwrap();
    let manifest = e.path("gen/push/image.push.json");
    let out = run_ok(
        e.rko(&[
            "push",
            "--manifest",
            manifest.to_str().unwrap(),
            "--insecure-registry",
            &host,
            "--image-refs",
            "refs.json",
        ])
        .current_dir(elsewhere.path()),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [format!("{repo}@{digest}"), format!("{repo}:v1@{digest}")],
        "{out}"
    );
    assert_eq!(
        skopeo_digest(&format!("{repo}:v1"), &["--tls-verify=false"]),
        digest
    );
    let refs = read_json(elsewhere.path().join("refs.json"));
    let uploaded = refs["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b[1] == "uploaded")
        .count();
    assert_eq!(uploaded, 3, "config, static and binary layers: {refs}");

    // From the build's directory, by the manifest's relative path: the same files, all
    // already in the registry.
    e.ok(&[
        "push",
        "--manifest",
        "gen/push/image.push.json",
        "--insecure-registry",
        &host,
        "--image-refs",
        "refs.json",
    ]);
    assert_eq!(outcome_counts(&e), (3, 0, 0, 0, 0));
}

#[test]
fn tls_and_basic_auth() {
    common::require_tools!("docker-registry", "openssl", "htpasswd", "skopeo");
    let reg = Registry::start(RegistryOptions::tls_auth("rko", "s3cret"));
    let e = Env::new();
    let host = reg.host();
    let ca = reg.ca_cert().unwrap();
    let ca = ca.to_str().unwrap();
    let repo = format!("{host}/secure");
    let args = [
        "--repository",
        repo.as_str(),
        "--naming",
        "bare",
        "--ca-file",
        ca,
        "--attempts",
        "2",
    ];
    // No credentials: a clear error, nothing pushed.
    e.fails(
        &[
            &["build", "app", "--import-path", "example.com/a", "--push"][..],
            &args,
        ]
        .concat(),
        &["requires authentication", "docker login"],
    );
    // Wrong credentials.
    e.login(&host, "rko", "wrong");
    let err = e.fails(
        &[
            &["build", "app", "--import-path", "example.com/a", "--push"][..],
            &args,
        ]
        .concat(),
        &["refused the credentials"],
    );
    assert!(
        !err.contains("wrong"),
        "the password must not be shown: {err}"
    );
    // Untrusted certificate without --ca-file.
    e.login(&host, "rko", "s3cret");
    e.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--push",
            "--repository",
            &repo,
        ],
        &["TLS verification of", "--ca-file"],
    );
    // Right credentials and CA.
    let (reference, _) = build_push(&e, "example.com/a", &args);
    let digest = reference.split('@').nth(1).unwrap();
    let creds = reg.creds_arg().unwrap();
    let certs = reg.cert_dir().unwrap();
    let certs = format!("--cert-dir={}", certs.display());
    assert_eq!(
        skopeo_digest(&format!("{repo}:latest"), &["--creds", &creds, &certs]),
        digest
    );
}

#[test]
fn shallow_pull_then_mount_in_the_same_registry_and_copy_from_another() {
    common::require_tools!("docker-registry", "skopeo");
    let source = Registry::start(RegistryOptions::plain());
    let target = Registry::start(RegistryOptions::plain());
    let e = Env::new();
    let (s, t) = (source.host(), target.host());
    // A base image in the source registry.
    let (base_ref, _) = build_push(
        &e,
        "example.com/base",
        &[
            "--repository",
            &format!("{s}/base"),
            "--naming",
            "bare",
            "--insecure-registry",
            &s,
        ],
    );
    let base_digest = base_ref.split('@').nth(1).unwrap().to_string();
    // A tag alone is refused; the digest pins.
    e.fails(
        &[
            "pull",
            &format!("{s}/base:latest"),
            "-o",
            "nope",
            "--insecure-registry",
            &s,
        ],
        &["not pinned by digest", "--allow-tag"],
    );
    assert!(!e.path("nope").exists());
    let (out, _) = e.ok(&[
        "pull",
        &format!("{s}/base:latest"),
        "--allow-tag",
        "-o",
        "tagged",
        "--insecure-registry",
        &s,
    ]);
    assert_eq!(out.trim(), base_digest);
    let (out, err) = e.ok(&["pull", &base_ref, "-o", "base", "--insecure-registry", &s]);
    assert_eq!(out.trim(), base_digest);
    assert!(err.contains("KiB downloaded"), "{err}");
    // Shallow: manifest and config only.
    assert_eq!(
        std::fs::read_dir(e.path("base/blobs/sha256"))
            .unwrap()
            .count(),
        2
    );
    let sources = read_json(e.path("base/rko-sources.json"));
    assert_eq!(sources["blobs"].as_array().unwrap().len(), 3);
    let base_arg = format!("base@{base_digest}");

    // Same registry, other repository: the base layers are mounted, never downloaded.
    let (r1, _) = build_push(
        &e,
        "example.com/svc/cmd/one",
        &[
            "--base",
            &base_arg,
            "--repository",
            &format!("{s}/apps"),
            "--insecure-registry",
            &s,
        ],
    );
    let (existed, mounted, uploaded, copied, _) = outcome_counts(&e);
    assert_eq!(
        (mounted, copied),
        (2, 0),
        "static and binary base layers mounted (kodata is the same as ours): {existed} {uploaded}"
    );
    run_ok(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{r1}")),
    );

    // Another registry: the base blobs stream from the source into the upload.
    let (r2, _) = build_push(
        &e,
        "example.com/svc/cmd/two",
        &[
            "--base",
            &base_arg,
            "--repository",
            &format!("{t}/apps"),
            "--insecure-registry",
            &s,
            "--insecure-registry",
            &t,
        ],
    );
    let (_, mounted, _, copied, _) = outcome_counts(&e);
    assert_eq!((mounted, copied), (0, 2));
    let d2 = r2.split('@').nth(1).unwrap();
    assert_eq!(skopeo_digest(&r2, &["--tls-verify=false"]), d2);
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{r2}"))
            .arg(format!("oci:{}:x", e.path("copied").display())),
    );

    // A tarball on the shallow base streams the base layers from their registry.
    e.ok(&[
        "build",
        "app",
        "--import-path",
        "example.com/x",
        "--base",
        &base_arg,
        "--tarball",
        "shallow.tar",
        "--insecure-registry",
        &s,
    ]);
    let inspected = run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}", e.path("shallow.tar").display())),
    );
    assert_eq!(
        common::parse_json(&inspected)["Layers"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    // Eager: the layers too, and the tarball of an image on it needs nothing else.
    e.ok(&[
        "pull",
        &base_ref,
        "--eager",
        "-o",
        "eager",
        "--insecure-registry",
        &s,
    ]);
    assert_eq!(
        std::fs::read_dir(e.path("eager/blobs/sha256"))
            .unwrap()
            .count(),
        5
    );
    e.ok(&[
        "build",
        "app",
        "--import-path",
        "example.com/x",
        "--base",
        &format!("eager@{base_digest}"),
        "--tarball",
        "x.tar",
    ]);
}

#[test]
fn faults_never_leave_a_manifest_without_its_blobs() {
    common::require_tools!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = FaultProxy::for_registry(
        &reg,
        vec![
            FaultRule::first("HEAD", "/blobs/", Fault::Status(429, Some(1))),
            FaultRule::first("POST", "/blobs/uploads/", Fault::Status(500, None)),
            FaultRule::first("PUT", "/blobs/uploads/", Fault::DropMidBody),
            FaultRule::nth("PUT", "/blobs/uploads/", 3, Fault::Status(503, None)),
        ],
    );
    let e = Env::new();
    let host = proxy.addr();
    let (reference, err) = build_push(
        &e,
        "example.com/f",
        &[
            "--repository",
            &format!("{host}/f"),
            "--naming",
            "bare",
            "--insecure-registry",
            &host,
            "--jobs",
            "2",
        ],
    );
    let digest = reference.split('@').nth(1).unwrap();
    // The image is complete in the registry behind the proxy.
    assert_eq!(
        skopeo_digest(
            &format!("{}/f@{digest}", reg.host()),
            &["--tls-verify=false"]
        ),
        digest
    );
    let log = proxy.request_log();
    let faults = log
        .iter()
        .filter(|r| r.2 == 429 || r.2 >= 500 || r.2 == 0)
        .count();
    assert!(
        faults >= 3,
        "the faults were injected: {}",
        proxy.log_text()
    );
    // No manifest was written before the last blob upload finished.
    let last_blob = log
        .iter()
        .rposition(|r| r.0 == "PUT" && r.1.contains("/blobs/uploads/") && r.2 == 201)
        .unwrap();
    let first_manifest = log
        .iter()
        .position(|r| r.0 == "PUT" && r.1.contains("/manifests/"))
        .unwrap();
    assert!(
        first_manifest > last_blob,
        "manifest before blobs:\n{}",
        proxy.log_text()
    );
    assert!(err.contains("pushed"), "{err}");
}

#[test]
fn registry_down_and_bad_references() {
    let e = Env::new();
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let host = format!("127.0.0.1:{port}");
    e.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--push",
            "--repository",
            &format!("{host}/x"),
            "--insecure-registry",
            &host,
            "--attempts",
            "2",
        ],
        &["cannot reach 127.0.0.1"],
    );
    e.fails(
        &["pull", "no such/ref@sha256:abc", "-o", "o"],
        &["invalid image reference"],
    );
    e.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--push",
            "--repository",
            "registry.invalid/x",
            "--attempts",
            "1",
        ],
        &["cannot reach registry.invalid"],
    );
}

#[test]
fn load_into_docker_and_podman() {
    common::require_tools!("go", "docker", "podman");
    let t = tempfile::tempdir().unwrap();
    let bin = common::go_build(
        t.path(),
        "hello",
        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"loaded by rko\") }\n",
        "amd64",
    );
    let d = t.path();
    let r = |args: &[&str]| run_ok(Command::new(RKO).args(args).current_dir(d));
    r(&[
        "layer",
        "binary",
        "--binary",
        bin.to_str().unwrap(),
        "--import-path",
        "example.com/l/hello",
        "--platform",
        "linux/amd64",
        "-o",
        "b.gz",
        "--descriptor",
        "b.json",
    ]);
    r(&[
        "layer",
        "kodata",
        "--dir",
        "none",
        "--import-path",
        "example.com/l/hello",
        "-o",
        "k.gz",
        "--descriptor",
        "k.json",
    ]);
    r(&[
        "image",
        "--platform",
        "linux/amd64",
        "--layer",
        "k.json",
        "--layer",
        "b.json",
        "--manifest-out",
        "m.json",
        "--config-out",
        "c.json",
        "--descriptor-out",
        "d.json",
    ]);
    let sources = [
        "--root",
        "d.json",
        "--blob",
        "m.json",
        "--blob",
        "c.json",
        "--layer",
        "k.json=k.gz",
        "--layer",
        "b.json=b.gz",
    ];
    let tag = common::unique_ref("rko-load");
    let out = run_ok(
        Command::new(RKO)
            .arg("load")
            .args(sources)
            .args(["--tag", &tag, "--tool", "docker"])
            .current_dir(d),
    );
    assert!(out.contains(&tag));
    let _cleanup = DockerRmi(tag.clone());
    assert_eq!(
        run_ok(Command::new("docker").args(["run", "--rm", &tag])).trim(),
        "loaded by rko"
    );

    let podman = common::Podman::new();
    let mut cmd = Command::new(RKO);
    cmd.arg("load")
        .args(sources)
        .args(["--tag", &tag, "--tool", "podman"])
        .current_dir(d);
    for (k, v) in podman.env() {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("loaded with podman"));
    assert_eq!(podman.ok(&["run", "--rm", &tag]).trim(), "loaded by rko");
}

struct DockerRmi(String);

impl Drop for DockerRmi {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

#[test]
fn pull_refuses_content_that_does_not_match_the_pinned_digest() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let e = Env::new();
    let host = reg.host();
    let (reference, _) = build_push(
        &e,
        "example.com/m",
        &[
            "--repository",
            &format!("{host}/m"),
            "--naming",
            "bare",
            "--insecure-registry",
            &host,
        ],
    );
    let digest = reference.split('@').nth(1).unwrap();
    // A registry that answers the pinned digest with other bytes.
    let forged = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#;
    let proxy = FaultProxy::for_registry(
        &reg,
        vec![FaultRule::always(
            "GET",
            "/manifests/",
            Fault::Respond(
                "application/vnd.oci.image.manifest.v1+json".into(),
                forged.to_vec(),
            ),
        )],
    );
    let p = proxy.addr();
    e.fails(
        &[
            "pull",
            &format!("{p}/m@{digest}"),
            "-o",
            "out",
            "--insecure-registry",
            &p,
        ],
        &["does not match", &format!("expected {digest}")],
    );
    assert!(!e.path("out").exists(), "no partial layout");
}

#[test]
fn credentials_from_a_helper_and_from_podmans_auth_file() {
    common::require_tools!("docker-registry", "openssl", "htpasswd");
    let reg = Registry::start(RegistryOptions::tls_auth("helper-user", "helper-pass"));
    let e = Env::new();
    let host = reg.host();
    let ca = reg.ca_cert().unwrap();
    let repo = format!("{host}/h");
    // docker-credential-rkotest answers `get` with the registry's credentials.
    let bin = e.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-rkotest");
    std::fs::write(&helper, "#!/bin/sh\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"helper-user\",\"Secret\":\"helper-pass\"}' \"$server\"\n").unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        e.path("docker/config.json"),
        serde_json::json!({"credHelpers": {host.clone(): "rkotest"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let args = [
        "build",
        "app",
        "--import-path",
        "example.com/h",
        "--push",
        "--repository",
        repo.as_str(),
        "--naming",
        "bare",
        "--ca-file",
        ca.to_str().unwrap(),
    ];
    let o = e.rko(&args).env("PATH", &path).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // podman's auth.json, when docker's config has nothing for the registry.
    std::fs::remove_file(e.path("docker/config.json")).unwrap();
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("helper-user:helper-pass");
    std::fs::write(
        e.path("auth.json"),
        serde_json::json!({"auths": {host.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let o = e
        .rko(&args)
        .env("REGISTRY_AUTH_FILE", e.path("auth.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn bearer_tokens_from_the_registrys_token_server() {
    common::require_tools!("go", "openssl", "docker-registry");
    let tokens = TokenServer::start("tok-user", "tok-pass");
    let reg = Registry::start(tokens.registry_options());
    let e = Env::new();
    let host = reg.host();
    let repo = format!("{host}/tok");
    let args = [
        "--repository",
        repo.as_str(),
        "--naming",
        "bare",
        "--insecure-registry",
        host.as_str(),
        "--attempts",
        "2",
    ];
    e.fails(
        &[
            &["build", "app", "--import-path", "example.com/t", "--push"][..],
            &args,
        ]
        .concat(),
        &["requires authentication"],
    );
    e.login(&host, "tok-user", "wrong");
    e.fails(
        &[
            &["build", "app", "--import-path", "example.com/t", "--push"][..],
            &args,
        ]
        .concat(),
        &["refused the credentials"],
    );
    e.login(&host, "tok-user", "tok-pass");
    let (reference, _) = build_push(&e, "example.com/t", &args);
    let digest = reference.split('@').nth(1).unwrap();
    let (out, _) = e.ok(&[
        "pull",
        &reference,
        "-o",
        "pulled",
        "--insecure-registry",
        &host,
    ]);
    assert_eq!(out.trim(), digest);
}
