//! Helpers for the `rko resolve` tests (tests/resolve.rs, tests/resolve_errors.rs): push
//! manifests with no blob files, and running `rko resolve` with stdin.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::RKO;

pub const API: &str = "example.com/svc/cmd/api";
pub const WORKER: &str = "example.com/svc/cmd/worker";
pub const API_DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";
pub const WORKER_DIGEST: &str =
    "sha256:2222222222222222222222222222222222222222222222222222222222222222";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/resolve")
}

/// A push manifest for `import_path` whose blob files do not exist (resolve reads none).
pub fn manifest(
    dir: &Path,
    name: &str,
    import_path: Option<&str>,
    repo: &str,
    digest: &str,
    tags: &[&str],
) -> PathBuf {
    let mut pm = serde_json::json!({
        "repository": repo,
        "tags": tags,
        "root": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": 100,
            "path": "no/such/blob"
        },
        "manifests": [],
        "blobs": []
    });
    if let Some(ip) = import_path {
        pm["importPath"] = ip.into();
    }
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&pm).unwrap()).unwrap();
    path
}

/// The api and worker push manifests in `dir`.
pub fn images(dir: &Path) -> Vec<String> {
    let api = manifest(
        dir,
        "api.json",
        Some(API),
        "reg.example.com:5000/api",
        API_DIGEST,
        &["v1", "latest"],
    );
    let worker = manifest(
        dir,
        "worker.json",
        Some(WORKER),
        "reg.example.com/team/worker",
        WORKER_DIGEST,
        &["v2"],
    );
    vec![
        "--image".into(),
        api.display().to_string(),
        "--image".into(),
        worker.display().to_string(),
    ]
}

pub fn reference(import_path: &str, tag_refs: bool) -> String {
    match (import_path, tag_refs) {
        (API, false) => format!("reg.example.com:5000/api@{API_DIGEST}"),
        (API, true) => format!("reg.example.com:5000/api:v1@{API_DIGEST}"),
        (WORKER, false) => format!("reg.example.com/team/worker@{WORKER_DIGEST}"),
        (WORKER, true) => format!("reg.example.com/team/worker:v2@{WORKER_DIGEST}"),
        _ => panic!("no image for {import_path}"),
    }
}

/// Runs `rko resolve ARGS` in `dir` with `stdin`; returns its output.
pub fn run_resolve(dir: &Path, args: &[String], stdin: &[u8]) -> Output {
    let mut child = Command::new(RKO)
        .arg("resolve")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `rko resolve ARGS` in `dir` with `stdin`, asserting success; returns the output bytes.
pub fn resolve_in(dir: &Path, args: &[String], stdin: &[u8]) -> Vec<u8> {
    let out = run_resolve(dir, args, stdin);
    assert!(
        out.status.success(),
        "rko resolve {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
