//! Deploying examples/monorepo with real Bazel against a real docker-registry on
//! 127.0.0.1: `bazel run //deploy:prod` (ko_resolve) pushes foo and bar in one `rko push`
//! and prints the resolved YAML; every digest it names reads back with skopeo; a second run
//! makes HEAD requests only; a change to foo re-runs only foo's actions and the resolve, and
//! uploads one layer, one config and one manifest. Counted from the registry's access log
//! and Bazel's execution log.

mod common;

use std::path::Path;
use std::process::Command;

use common::bazel::{self, Workspace};
use common::registry::{Registry, RegistryOptions};
use common::{run_ok, sha256_hex};

/// (method, path) of every request in the registry's access log.
fn requests(reg: &Registry) -> Vec<(String, String)> {
    reg.log()
        .lines()
        .filter_map(|l| {
            let quoted = l.split('"').nth(1)?;
            let mut parts = quoted.split(' ');
            let (method, path) = (parts.next()?, parts.next()?);
            path.starts_with("/v2/")
                .then(|| (method.to_string(), path.to_string()))
        })
        .collect()
}

fn writes(reqs: &[(String, String)]) -> Vec<&(String, String)> {
    reqs.iter()
        .filter(|(m, _)| m != "HEAD" && m != "GET")
        .collect()
}

/// The `image:` values of a YAML text, unquoted.
fn images(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.trim().strip_prefix("image:"))
        .map(|v| v.trim().trim_matches('"').to_string())
        .collect()
}

fn skopeo_digest(reference: &str) -> String {
    let raw = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{reference}")),
    );
    format!("sha256:{}", sha256_hex(raw.as_bytes()))
}

/// `bazel run //deploy:prod` with an execution log; returns (stdout, the Ko* and Go
/// spawns that ran, as "mnemonic progress").
fn deploy(ws: &Workspace, log: &Path, extra: &[&str]) -> (String, Vec<String>) {
    let exec_log = format!("--execution_log_json_file={}", log.display());
    let mut args = vec!["run", exec_log.as_str(), "//deploy:prod"];
    if !extra.is_empty() {
        args.push("--");
        args.extend_from_slice(extra);
    }
    let (stdout, _) = ws.ok(&args);
    let mut ran: Vec<String> = bazel::read_execution_log(log)
        .into_iter()
        .filter(|s| s.mnemonic.starts_with("Ko") || s.mnemonic.contains("Go"))
        .map(|s| format!("{} {}", s.mnemonic, s.progress))
        .collect();
    ran.sort();
    (stdout, ran)
}

#[test]
fn bazel_run_deploy_pushes_every_image_once_and_prints_the_resolved_yaml() {
    common::require_tools!("bazel", "go", "docker-registry", "skopeo");
    let _serial = bazel::serial();
    let reg = Registry::start(RegistryOptions::plain());
    let ws = Workspace::copy(&bazel::repo_root().join("examples/monorepo"), "monorepo");
    // The example pushes to localhost:5000; point it at this test's registry.
    let local = format!("localhost:{}", reg.port());
    for build in ["cmd/foo/BUILD.bazel", "cmd/bar/BUILD.bazel"] {
        ws.write(build, &ws.read(build).replace("localhost:5000", &local));
    }
    let logs = tempfile::tempdir().unwrap();

    // --push=false: the YAML, and nothing sent (the log holds the start-up probe only).
    let start = requests(&reg).len();
    let (printed, _) = deploy(&ws, &logs.path().join("0.json"), &["--push=false"]);
    assert_eq!(requests(&reg).len(), start, "{:?}", requests(&reg));
    let resolved = std::fs::read_to_string(ws.bin("deploy/prod.yaml")).unwrap();
    assert_eq!(printed, resolved, "stdout is the resolved YAML alone");

    // The push: every image the YAML names is in the registry by that digest.
    let (stdout, _) = deploy(&ws, &logs.path().join("1.json"), &[]);
    assert_eq!(stdout, resolved);
    let refs = images(&stdout);
    assert_eq!(refs.len(), 2, "{stdout}");
    for r in &refs {
        assert!(r.starts_with(&format!("{local}/monorepo/")), "{r}");
        let digest = r.split('@').nth(1).unwrap();
        assert_eq!(skopeo_digest(r), digest);
        let tag = format!("{}:latest", r.split('@').next().unwrap());
        assert_eq!(skopeo_digest(&tag), digest, "{tag}");
    }
    // The base layer both share went up once: foo's repository has it, bar's mounted it.
    let first = requests(&reg)[start..].to_vec();
    let blob_puts = first
        .iter()
        .filter(|(m, p)| m == "PUT" && p.contains("/blobs/uploads/"))
        .count();
    let mounts = first
        .iter()
        .filter(|(m, p)| m == "POST" && p.contains("mount="))
        .count();
    assert_eq!(mounts, 1, "{first:?}");
    // foo: the base, kodata, binary layers and a config; bar: its (empty) kodata and binary
    // layers and a config; then each image's SBOM (the default SPDX) and its artifact
    // manifest's empty `{}` config, attached as a referrer.
    assert_eq!(blob_puts, 7 + 2 * 2, "{first:?}");
    for r in &refs {
        let (repo, digest) = r.split_once('@').unwrap();
        let repo = repo.split_once('/').unwrap().1;
        let tag = format!("sha256-{}", digest.trim_start_matches("sha256:"));
        assert!(
            first
                .iter()
                .any(|(m, p)| m == "PUT" && p == &format!("/v2/{repo}/manifests/{tag}")),
            "{r}: no referrers tag {tag} put: {first:?}"
        );
    }

    // Again: HEAD requests only, and nothing re-ran.
    let (_, ran) = deploy(&ws, &logs.path().join("2.json"), &[]);
    assert!(ran.is_empty(), "{ran:?}");
    let again = requests(&reg)[start + first.len()..].to_vec();
    assert!(writes(&again).is_empty(), "{again:?}");
    assert!(!again.is_empty());

    // foo changes: only foo's actions and the resolve run; one layer, one config and one
    // manifest (by digest, then its tag) go up, all to foo's repository.
    let main = ws
        .read("cmd/foo/main.go")
        .replace("foo (%s/%s", "foo v2 (%s/%s");
    ws.write("cmd/foo/main.go", &main);
    let before = requests(&reg).len();
    let (stdout, ran) = deploy(&ws, &logs.path().join("3.json"), &[]);
    assert!(
        ran.iter()
            .all(|r| r.contains("//cmd/foo:") || r.contains("//deploy:prod")),
        "{ran:?}"
    );
    for m in ["KoLayer", "KoImage", "KoPushManifest", "KoResolve"] {
        assert_eq!(
            ran.iter().filter(|r| r.starts_with(m)).count(),
            1,
            "{m}: {ran:?}"
        );
    }
    let changed = requests(&reg)[before..].to_vec();
    let w = writes(&changed);
    assert!(w.iter().all(|(_, p)| p.contains("/monorepo/foo/")), "{w:?}");
    let count = |m: &str, part: &str| {
        w.iter()
            .filter(|(rm, p)| rm == m && p.contains(part))
            .count()
    };
    // The new image names a new SBOM (its subject is the image digest); the `{}` config of
    // its artifact manifest is there already.
    assert_eq!(
        count("PUT", "/blobs/uploads/"),
        3,
        "a layer, a config and the SBOM: {w:?}"
    );
    assert_eq!(
        count("PUT", "/manifests/sha256:"),
        2,
        "the image and the SBOM's artifact manifest: {w:?}"
    );
    assert_eq!(count("PUT", "/manifests/latest"), 1, "{w:?}");
    assert_eq!(
        count("PUT", "/manifests/sha256-"),
        1,
        "the referrers tag: {w:?}"
    );
    assert_eq!(
        w.len(),
        10,
        "3 POST, 3 PUT blobs, 2 PUT manifests by digest, the tag and the referrers tag: {w:?}"
    );
    let new_refs = images(&stdout);
    assert_ne!(new_refs[0], refs[0], "foo's digest changed");
    assert_eq!(new_refs[1], refs[1], "bar's did not");
    assert_eq!(
        skopeo_digest(&new_refs[0]),
        new_refs[0].split('@').nth(1).unwrap()
    );
}
