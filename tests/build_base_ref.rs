//! `rko build --base HOST/REPO@sha256:…`, as `ko build` takes a base: pulled shallow into the
//! content-addressed cache once ($XDG_CACHE_HOME/rko), the same image as `rko pull` plus a
//! layout base gives, and a later build with the registry gone needs no network. A tag is
//! resolved and its digest printed; a reference the registry lacks fails clearly.

mod common;

use std::process::Command;

use common::registry::{Registry, RegistryOptions};
use common::{RKO, go_build, rko_ok, run_ok};

#[test]
fn a_base_by_reference_is_pulled_once_and_builds_offline_after() {
    common::require_tools!("go", "docker-registry", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let w = tempfile::tempdir().unwrap();
    let index = common::registry::push_two_platform_base(&reg, w.path());
    let cache = w.path().join("cache");
    // An arm64 binary: the base's arm64 image is picked from its index.
    let bin = go_build(w.path(), "app", "package main\n\nfunc main() {}\n", "arm64");
    let bin = bin.to_str().unwrap();
    let base = format!("{}/base@{index}", reg.host());
    let build = |base_arg: &str, extra: &[&str]| {
        let mut cmd = Command::new(RKO);
        cmd.args([
            "build",
            bin,
            "--import-path",
            "example.com/x",
            "--base",
            base_arg,
        ])
        .args(extra)
        .env("XDG_CACHE_HOME", &cache)
        .current_dir(w.path());
        cmd.output().unwrap()
    };
    let ok = |o: std::process::Output| {
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "rko build failed:\n{err}");
        (String::from_utf8_lossy(&o.stdout).trim().to_string(), err)
    };

    // The same image as the two-step way: `rko pull`, then the layout as the base (named as
    // the reference, as ko names a base in its annotations).
    let layout = w.path().join("layout");
    rko_ok([
        "pull",
        &base,
        "--platform",
        "linux/arm64",
        "-o",
        layout.to_str().unwrap(),
    ]);
    let by_layout = rko_ok([
        "build",
        bin,
        "--import-path",
        "example.com/x",
        "--base",
        &format!("{}@{index}", layout.display()),
        "--base-name",
        &base,
    ]);
    let tar = w.path().join("img.tar");
    let (by_ref, _) = ok(build(&base, &["--tarball", tar.to_str().unwrap()]));
    assert_eq!(by_ref, by_layout);
    let entry = cache
        .join("rko/bases")
        .join(index.replace(':', "-"))
        .join("linux-arm64");
    assert!(entry.join("index.json").is_file(), "{}", entry.display());
    // The tarball holds the base's layers (streamed from the registry) and is that image.
    let inspected =
        run_ok(Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", tar.display())]));
    assert_eq!(common::parse_json(&inspected)["Digest"], by_ref.as_str());

    // A tag is resolved and the digest to pin is printed.
    run_ok(Command::new("skopeo").args([
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{base}"),
        &format!("docker://{}/base:v1", reg.host()),
    ]));
    // (skopeo rewrites the index it copies: the tag names another digest than `index`.)
    let tagged = reg.tag_digest("base", "v1").unwrap();
    let (by_tag, err) = ok(build(&format!("{}/base:v1", reg.host()), &[]));
    let pin = format!(
        "resolved to {tagged}; pin it as {}/base@{tagged}",
        reg.host()
    );
    assert!(err.contains(&pin), "{err}");
    assert!(by_tag.starts_with("sha256:"), "{by_tag}");

    // A reference the registry lacks: a clear error naming it, exit 1.
    let missing = format!("{}/nope@sha256:{}", reg.host(), "0".repeat(64));
    let o = build(&missing, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("pulling the base") && err.contains("/nope@"),
        "{err}"
    );

    // With the registry gone, the cached base still builds the same image (the digest needs
    // no layer bytes of the base).
    drop(reg);
    let (offline, _) = ok(build(&base, &[]));
    assert_eq!(offline, by_ref);
    // ko's KO_DEFAULTBASEIMAGE names the base when --base is not given.
    let o = Command::new(RKO)
        .args(["build", bin, "--import-path", "example.com/x"])
        .env("XDG_CACHE_HOME", &cache)
        .env("KO_DEFAULTBASEIMAGE", &base)
        .output()
        .unwrap();
    assert_eq!(ok(o).0, by_ref);
}
