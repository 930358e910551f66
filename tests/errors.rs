//! Bad input: each case fails with exit code 1 (never a panic), a message that says what
//! was expected and what was found, and no output left behind, not even a temporary file.

use std::path::PathBuf;
use std::process::Command;

mod common;
use common::{RKO, fake_go_binary};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let f = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(f.out()).unwrap();
        fake_go_binary(&f.path("app"), 62, 70_000);
        f
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn out(&self) -> PathBuf {
        self.path("out")
    }
    /// Runs rko expecting failure; checks the exit code, the message and that `out/` is empty.
    fn fails(&self, args: &[&str], expect: &[&str]) -> String {
        let o = Command::new(RKO)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            o.status.code(),
            Some(1),
            "rko {args:?} should fail with exit 1; stderr: {err}"
        );
        assert!(
            err.starts_with("rko: error: "),
            "message must lead with rko: error: {err}"
        );
        for e in expect {
            assert!(
                err.contains(e),
                "rko {args:?}: message should contain {e:?}; got: {err}"
            );
        }
        assert!(!err.contains("panicked"), "{err}");
        let left: Vec<_> = std::fs::read_dir(self.out())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "rko {args:?} left output behind: {left:?}");
        err
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = Command::new(RKO)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "rko {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
    /// An OCI layout base made by rko itself; returns its manifest digest.
    fn base_layout(&self, name: &str) -> String {
        let dir = self.path(name);
        let d = self.ok(&[
            "build",
            "app",
            "--import-path",
            "example.com/base",
            "--layout",
            dir.to_str().unwrap(),
        ]);
        d.trim().to_string()
    }
}

const LAYER_OUT: [&str; 4] = ["-o", "out/l.gz", "--descriptor", "out/l.json"];

fn layer_binary(bin: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "layer",
        "binary",
        "--binary",
        bin,
        "--import-path",
        "example.com/a/cmd/app",
        "--platform",
        "linux/amd64",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v.extend(LAYER_OUT.iter().map(|s| s.to_string()));
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn missing_binary() {
    let f = Fixture::new();
    f.fails(
        &strs(&layer_binary("nope", &[])),
        &["cannot read the Go binary nope", "No such file"],
    );
}

#[test]
fn directory_instead_of_binary() {
    let f = Fixture::new();
    std::fs::create_dir(f.path("adir")).unwrap();
    f.fails(
        &strs(&layer_binary("adir", &[])),
        &["adir is a directory", "expected the Go binary file"],
    );
}

#[test]
fn text_file_is_not_an_executable() {
    let f = Fixture::new();
    std::fs::write(f.path("script.sh"), "#!/bin/sh\necho hi\n").unwrap();
    f.fails(
        &strs(&layer_binary("script.sh", &[])),
        &[
            "is not an executable",
            "found a script",
            "ELF, Mach-O or PE",
        ],
    );
    std::fs::write(f.path("empty"), "").unwrap();
    f.fails(&strs(&layer_binary("empty", &[])), &["found an empty file"]);
}

#[test]
fn non_go_executable_needs_the_flag() {
    let f = Fixture::new();
    let mut b = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
    b.resize(10_000, 1);
    std::fs::write(f.path("cprog"), b).unwrap();
    f.fails(
        &strs(&layer_binary("cprog", &[])),
        &["has no Go build info", "--allow-non-go"],
    );
    f.ok(&strs(&layer_binary("cprog", &["--allow-non-go"])));
    assert!(f.path("out/l.gz").is_file() && f.path("out/l.json").is_file());
}

#[test]
fn binary_for_another_architecture() {
    let f = Fixture::new();
    fake_go_binary(&f.path("arm"), 183, 70_000);
    f.fails(
        &strs(&layer_binary("arm", &[])),
        &["for arm64", "image platform is linux/amd64", "GOARCH=amd64"],
    );
}

/// A binary must be for the image's OS: a PE or Mach-O file in a Linux image, an ELF file in
/// a Windows image, and any OS but linux and windows (as ko) are refused, by `rko layer
/// binary` and by `rko build` (which takes the platform from the file); Delve goes into
/// Linux images only; a Windows image needs a Windows base, not the Linux `static` one.
#[test]
fn binaries_for_another_os_and_unsupported_oses_are_refused() {
    common::require_tools!("go");
    let f = Fixture::new();
    let build = |goos: &str| {
        let src = f.path(&format!("src-{goos}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("go.mod"), "module example.com/w\n\ngo 1.19\n").unwrap();
        std::fs::write(src.join("main.go"), "package main\n\nfunc main() {}\n").unwrap();
        let out = f.path(goos);
        common::run_ok(
            Command::new("go")
                .args(["build", "-trimpath", "-o"])
                .arg(&out)
                .arg(".")
                .current_dir(&src)
                .env("CGO_ENABLED", "0")
                .env("GOOS", goos)
                .env("GOARCH", "amd64")
                .env("GOCACHE", common::go_cache())
                .env("GOPROXY", "off")
                .env("GOFLAGS", ""),
        );
        goos.to_string()
    };
    let windows = build("windows");
    let darwin = build("darwin");
    let linux = build("linux");
    let with_platform = |bin: &str, platform: &str, extra: &[&str]| {
        let mut args = layer_binary(bin, extra);
        let at = args.iter().position(|a| a == "linux/amd64").unwrap();
        args[at] = platform.into();
        args
    };
    for (bin, os, format) in [
        (&windows, "windows", "a PE"),
        (&darwin, "darwin", "a Mach-O"),
    ] {
        f.fails(
            &strs(&layer_binary(bin, &[])),
            &[
                &format!(
                    "is {format} executable (for {os}), but the image platform is linux/amd64"
                ),
                "GOOS=linux (an ELF file)",
            ],
        );
    }
    f.fails(
        &strs(&with_platform(&linux, "windows/amd64", &[])),
        &[
            "is an ELF executable (for linux), but the image platform is windows/amd64",
            "GOOS=windows (a PE file)",
        ],
    );
    f.fails(
        &strs(&with_platform(&darwin, "darwin/amd64", &[])),
        &[
            "the image platform is darwin/amd64",
            "makes linux and windows images only",
        ],
    );
    f.fails(
        &strs(&with_platform(&windows, "windows/amd64", &["--delve"])),
        &[
            "--delve",
            "linux/amd64 and linux/arm64 only",
            "windows/amd64",
        ],
    );
    assert!(!f.path("out").exists() || std::fs::read_dir(f.path("out")).unwrap().next().is_none());
    // rko build takes the platform from the PE file: windows, which the Linux `static`
    // base cannot carry; refused before any output.
    f.fails(
        &[
            "build",
            &windows,
            "--import-path",
            "example.com/w",
            "--tarball",
            "out/w.tar",
        ],
        &[
            "the built-in `static` base is a Linux base",
            "the image platform is windows/amd64",
            "--base scratch",
        ],
    );
    assert!(!f.path("out/w.tar").exists());
}

#[test]
fn invalid_import_path_platform_tag_and_level() {
    let f = Fixture::new();
    f.fails(
        &[
            "layer",
            "binary",
            "--binary",
            "app",
            "--import-path",
            "bad path/x",
            "--platform",
            "linux/amd64",
            "-o",
            "out/l",
            "--descriptor",
            "out/d",
        ],
        &[
            "invalid import path \"bad path/x\"",
            "expected a Go import path",
        ],
    );
    let o = Command::new(RKO)
        .args([
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--platform",
            "linux/amd46",
        ])
        .current_dir(f.dir.path())
        .output()
        .unwrap();
    // clap reports bad flag values with exit code 2 and the parser's message.
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown architecture \"amd46\""));
    f.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--tag",
            "Bad/Name:v1",
            "--tarball",
            "out/x.tar",
        ],
        &["invalid tag \"Bad/Name:v1\"", "expected NAME[:TAG]"],
    );
    f.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--compression-level",
            "30",
            "--tarball",
            "out/x.tar",
        ],
        &[
            "gzip compression level 30 is out of range",
            "expected 1..=12",
        ],
    );
}

#[test]
fn output_directory_missing() {
    let f = Fixture::new();
    f.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--tarball",
            "out/no/such/dir/x.tar",
        ],
        &[
            "cannot write output",
            "expected an existing, writable directory",
        ],
    );
}

#[test]
fn base_digest_mismatch() {
    let f = Fixture::new();
    f.base_layout("base");
    let wrong = format!("base@sha256:{}", "0".repeat(64));
    f.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--base",
            &wrong,
            "--tarball",
            "out/x.tar",
        ],
        &[
            "base digest mismatch",
            "expected sha256:0000",
            "the layout holds sha256:",
        ],
    );
    f.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--base",
            "base@sha256:abc",
            "--tarball",
            "out/x.tar",
        ],
        &["invalid digest", "64 lowercase hex"],
    );
}

#[test]
fn corrupt_base() {
    let f = Fixture::new();
    let digest = f.base_layout("base");
    let hex = digest.trim_start_matches("sha256:");
    // A manifest blob whose bytes no longer match its digest.
    let blob = f.path("base/blobs/sha256").join(hex);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let base = format!("base@{digest}");
    f.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--base",
            &base,
            "--tarball",
            "out/x.tar",
        ],
        &[
            "does not match its descriptor",
            &format!("expected {digest}"),
        ],
    );
    // index.json that is not JSON.
    std::fs::write(f.path("base/index.json"), "{not json").unwrap();
    f.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--base",
            "base",
            "--tarball",
            "out/x.tar",
        ],
        &["index.json is not a valid OCI layout index.json (corrupt JSON)"],
    );
    // Not a layout at all.
    std::fs::create_dir(f.path("plain")).unwrap();
    f.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--base",
            "plain",
            "--tarball",
            "out/x.tar",
        ],
        &["plain is not an OCI image layout", "skopeo copy"],
    );
}

#[test]
fn platform_not_in_base_index() {
    let f = Fixture::new();
    f.base_layout("base");
    // An index over the one amd64 image, in a layout of its own.
    let idx_layout = f.path("idx");
    std::fs::create_dir_all(idx_layout.join("blobs/sha256")).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.path("base/index.json")).unwrap()).unwrap();
    let m = &index["manifests"][0];
    let hex = m["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest_bytes = std::fs::read(f.path("base/blobs/sha256").join(&hex)).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let config_hex = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    std::fs::write(f.path("m.json"), &manifest_bytes).unwrap();
    let desc = serde_json::json!({"mediaType": m["mediaType"], "size": m["size"], "digest": m["digest"], "platform": {"architecture": "amd64", "os": "linux"}});
    std::fs::write(f.path("desc.json"), desc.to_string()).unwrap();
    f.ok(&[
        "index",
        "--image",
        "desc.json",
        "--index-out",
        "index.json",
        "--descriptor-out",
        "index-desc.json",
    ]);
    let index_bytes = std::fs::read(f.path("index.json")).unwrap();
    let index_digest = f
        .ok(&["index", "--image", "desc.json", "--index-out", "index.json"])
        .trim()
        .to_string();
    for (h, b) in [
        (
            index_digest.trim_start_matches("sha256:").to_string(),
            index_bytes.clone(),
        ),
        (hex.clone(), manifest_bytes.clone()),
    ] {
        std::fs::write(idx_layout.join("blobs/sha256").join(h), b).unwrap();
    }
    std::fs::copy(
        f.path("base/blobs/sha256").join(&config_hex),
        idx_layout.join("blobs/sha256").join(&config_hex),
    )
    .unwrap();
    std::fs::copy(f.path("base/oci-layout"), idx_layout.join("oci-layout")).unwrap();
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "size": index_bytes.len(), "digest": index_digest}]});
    std::fs::write(idx_layout.join("index.json"), top.to_string()).unwrap();
    let base = format!("idx@{index_digest}");
    f.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--base",
            &base,
            "--platform",
            "linux/arm64",
            "--allow-non-go",
            "--tarball",
            "out/x.tar",
        ],
        &[
            "has no image for platform linux/arm64",
            "it has: linux/amd64",
        ],
    );
    // The same base works for the platform it has.
    f.ok(&[
        "build",
        "app",
        "--import-path",
        "example.com/a",
        "--base",
        &base,
        "--platform",
        "linux/amd64",
    ]);
}

#[test]
fn kodata_symlink_escaping_its_root() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.path("kodata")).unwrap();
    std::fs::write(f.path("secret.txt"), "do not ship").unwrap();
    std::os::unix::fs::symlink(f.path("secret.txt"), f.path("kodata/leak.txt")).unwrap();
    let root = f.path("kodata");
    let o = Command::new(RKO)
        .args([
            "layer",
            "kodata",
            "--dir",
            "kodata",
            "--import-path",
            "example.com/a",
            "--allowed-root",
            root.to_str().unwrap(),
        ])
        .args(LAYER_OUT)
        .current_dir(f.dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("kodata symlink kodata/leak.txt resolves to")
            && err.contains("outside the allowed root"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(f.out()).unwrap().count(), 0);
}

/// `KO_DATA_PATH_ALLOWED_ROOT`, which the refusal above names as the way out, reaches
/// `rko build` too: the kodata layer and the provenance's file list both follow the link.
#[test]
fn kodata_allowed_root_from_the_environment_reaches_build_and_its_provenance() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.path("kodata")).unwrap();
    std::fs::create_dir_all(f.path("shared")).unwrap();
    std::fs::write(f.path("shared/logo.txt"), "shared with another service").unwrap();
    std::os::unix::fs::symlink("../shared/logo.txt", f.path("kodata/logo.txt")).unwrap();
    let args = [
        "build",
        "app",
        "--import-path",
        "example.com/a",
        "--base",
        "scratch",
        "--kodata",
        "kodata",
        "--tarball",
        "out/img.tar",
        "--provenance",
        "out/prov.json",
    ];
    // No git work tree around it and no variable: the link leaves the kodata dir.
    let o = Command::new(RKO)
        .args(args)
        .env_remove("KO_DATA_PATH_ALLOWED_ROOT")
        .current_dir(f.dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("outside the allowed root"), "{err}");
    assert_eq!(std::fs::read_dir(f.out()).unwrap().count(), 0);

    let o = Command::new(RKO)
        .args(args)
        .env("KO_DATA_PATH_ALLOWED_ROOT", f.dir.path())
        .current_dir(f.dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.path("out/prov.json")).unwrap()).unwrap();
    let text = prov.to_string();
    assert!(
        text.contains("logo.txt"),
        "the provenance lists the linked kodata file: {text}"
    );
}

#[test]
fn missing_base_blob_for_a_tarball_names_the_digest() {
    let f = Fixture::new();
    let digest = f.base_layout("base");
    // Shallow base: drop every layer blob, keep manifest and config.
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            f.path("base/blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let first_layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    for l in manifest["layers"].as_array().unwrap() {
        std::fs::remove_file(
            f.path("base/blobs/sha256")
                .join(l["digest"].as_str().unwrap().trim_start_matches("sha256:")),
        )
        .unwrap();
    }
    let base = format!("base@{digest}");
    // The image itself needs no layer bytes...
    f.ok(&[
        "image",
        "--base",
        &base,
        "--platform",
        "linux/amd64",
        "--layer",
        &make_layer(&f),
        "--digest-out",
        "digest",
    ]);
    // ...the tarball does, and says which one is missing. (The static base's own layer is
    // built in, so remove it from consideration by checking the kodata layer of the base.)
    let err = f.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--base",
            &base,
            "--tarball",
            "out/x.tar",
        ],
        &["is not available", "--blobs DIR"],
    );
    let named = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .any(|l| err.contains(l["digest"].as_str().unwrap()));
    assert!(named || err.contains(&first_layer), "{err}");
}

#[test]
fn push_names_the_manifest_and_both_paths_of_a_missing_blob_file() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.path("push")).unwrap();
    image_files(&f);
    f.ok(&[
        "push-manifest",
        "--root",
        "desc.json",
        "--blob",
        "manifest.json",
        "--blob",
        "config.json",
        "--layer",
        "l.json=l.gz",
        "--repository",
        "127.0.0.1:9/x",
        "-o",
        "push/image.push.json",
    ]);
    // The layer is gone (a stale or partial build output); nothing is sent, so no registry
    // is needed to see the message.
    std::fs::remove_file(f.path("l.gz")).unwrap();
    f.fails(
        &["push", "--manifest", "push/image.push.json"],
        &[
            "the push manifest push/image.push.json records blob sha256:",
            "at ../l.gz",
            "resolves (relative paths against the manifest's directory) to push/../l.gz",
            "rebuild the push target",
        ],
    );
}

/// An image's files: l.json and l.gz (its binary layer), config.json, manifest.json and
/// desc.json.
fn image_files(f: &Fixture) {
    f.ok(&[
        "image",
        "--platform",
        "linux/amd64",
        "--layer",
        &make_layer(f),
        "--config-out",
        "config.json",
        "--manifest-out",
        "manifest.json",
        "--descriptor-out",
        "desc.json",
    ]);
}

fn make_layer(f: &Fixture) -> String {
    f.ok(&[
        "layer",
        "binary",
        "--binary",
        "app",
        "--import-path",
        "example.com/a/cmd/app",
        "--platform",
        "linux/amd64",
        "-o",
        "l.gz",
        "--descriptor",
        "l.json",
    ]);
    "l.json".to_string()
}

#[test]
fn a_corrupt_sources_file_is_named_instead_of_a_missing_blob() {
    let f = Fixture::new();
    let digest = f.base_layout("base");
    // What `rko pull` leaves in a shallow layout, truncated.
    std::fs::write(f.path("base/rko-sources.json"), "{\"repository\": \"127.0.").unwrap();
    f.fails(
        &[
            "build",
            "app",
            "--import-path",
            "example.com/a",
            "--base",
            &format!("base@{digest}"),
            "--tarball",
            "out/x.tar",
        ],
        &[
            "base/rko-sources.json is corrupt",
            "expected the JSON `rko pull` writes",
            "pull the base again",
        ],
    );
}

#[test]
fn a_changed_layer_blob_is_a_mismatch_with_both_digests() {
    let f = Fixture::new();
    image_files(&f);
    let layer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.path("l.json")).unwrap()).unwrap();
    let mut bytes = std::fs::read(f.path("l.gz")).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(f.path("l.gz"), &bytes).unwrap();
    f.fails(
        &[
            "layout",
            "--root",
            "desc.json",
            "--blob",
            "manifest.json",
            "--blob",
            "config.json",
            "--layer",
            "l.json=l.gz",
            "-o",
            "out/layout",
        ],
        &[
            "blob l.gz does not match its descriptor",
            &format!("expected {}", layer["digest"].as_str().unwrap()),
            "rebuild it",
        ],
    );
}

#[test]
fn a_missing_parameter_file_is_a_usage_error() {
    let f = Fixture::new();
    let o = Command::new(RKO)
        .args(["image", "@nonexistent.params"])
        .current_dir(f.dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("reading the parameter file \"@nonexistent.params\"")
            && err.contains("a file of arguments, one per line"),
        "{err}"
    );
}

#[test]
fn a_parameter_file_stands_for_its_lines() {
    let f = Fixture::new();
    let layer = make_layer(&f);
    let lines = [
        "--platform",
        "linux/amd64",
        "--layer",
        &layer,
        "--digest-out",
    ];
    std::fs::write(f.path("image.params"), lines.join("\n") + "\nout/digest\n").unwrap();
    f.ok(&["image", "@image.params"]);
    let direct = [
        "--platform",
        "linux/amd64",
        "--layer",
        &layer,
        "--digest-out",
        "d",
    ];
    f.ok(&[&["image"], &direct[..]].concat());
    let via_file = std::fs::read_to_string(f.path("out/digest")).unwrap();
    assert!(via_file.starts_with("sha256:"), "{via_file}");
    assert_eq!(via_file, std::fs::read_to_string(f.path("d")).unwrap());
}
