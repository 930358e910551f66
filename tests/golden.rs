//! Golden outputs: the sha256 of every tar and JSON output for fixed inputs, pinned so an
//! unintended change to any byte (tar headers, compression, JSON field order, the static
//! base) fails here.
//!
//! After an intended change, regenerate with
//!     INSTA_UPDATE=always cargo test --test golden
//! and review the diff of tests/snapshots/golden__*.snap before committing it. A changed
//! compressed digest alone means the compressor's bytes changed (e.g. a libdeflate update):
//! every user's layer digests change with it, so say so in the change.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

mod common;
use common::{RKO, fake_go_binary};

fn rko(dir: &Path, args: &[&str]) -> String {
    let o = Command::new(RKO)
        .args(args)
        .current_dir(dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("KO_DATA_DATE_EPOCH")
        .env_remove("KO_DATA_PATH_ALLOWED_ROOT")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "rko {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn sha(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn golden_digests() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fake_go_binary(&d.join("app"), 62, 2_500_000);
    std::fs::create_dir_all(d.join("kodata/static")).unwrap();
    std::fs::write(d.join("kodata/static/index.html"), "<h1>golden</h1>\n").unwrap();
    std::fs::write(d.join("kodata/version.txt"), "1.0.0\n").unwrap();

    let ip = "example.com/golden/cmd/app";
    let lb = [
        "layer",
        "binary",
        "--binary",
        "app",
        "--import-path",
        ip,
        "--platform",
        "linux/amd64",
    ];
    rko(
        d,
        &[&lb[..], &["-o", "bin.gz", "--descriptor", "bin.json"]].concat(),
    );
    rko(
        d,
        &[
            &lb[..],
            &[
                "--compression",
                "zstd",
                "-o",
                "bin.zst",
                "--descriptor",
                "bin.zst.json",
            ],
        ]
        .concat(),
    );
    rko(
        d,
        &[
            "layer",
            "kodata",
            "--dir",
            "kodata",
            "--import-path",
            ip,
            "--mtime",
            "1700000000",
            "-o",
            "kd.gz",
            "--descriptor",
            "kd.json",
        ],
    );
    let image_args = [
        "image",
        "--platform",
        "linux/amd64",
        "--layer",
        "kd.json",
        "--layer",
        "bin.json",
        "--created",
        "1700000000",
        "--env",
        "MODE=golden",
        "--label",
        "org.opencontainers.image.source=https://example.com/golden",
        "--port",
        "8080",
        "--annotation",
        "org.example/note=<&>",
    ];
    rko(
        d,
        &[
            &image_args[..],
            &[
                "--config-out",
                "config.json",
                "--manifest-out",
                "manifest.json",
                "--descriptor-out",
                "desc.json",
            ],
        ]
        .concat(),
    );
    rko(
        d,
        &["index", "--image", "desc.json", "--index-out", "index.json"],
    );
    rko(
        d,
        &[
            "tarball",
            "--root",
            "desc.json",
            "--blob",
            "manifest.json",
            "--blob",
            "config.json",
            "--layer",
            "kd.json=kd.gz",
            "--layer",
            "bin.json=bin.gz",
            "--tag",
            "example.com/golden/app:v1",
            "-o",
            "image.tar",
        ],
    );

    let mut s = String::new();
    for f in [
        "bin.gz",
        "bin.json",
        "bin.zst",
        "bin.zst.json",
        "kd.gz",
        "kd.json",
        "config.json",
        "manifest.json",
        "desc.json",
        "index.json",
        "image.tar",
    ] {
        writeln!(s, "{f:14} {}", sha(&d.join(f))).unwrap();
    }
    let desc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("bin.json")).unwrap()).unwrap();
    writeln!(s, "binary diffID  {}", desc["diffID"].as_str().unwrap()).unwrap();
    let desc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("kd.json")).unwrap()).unwrap();
    writeln!(s, "kodata diffID  {}", desc["diffID"].as_str().unwrap()).unwrap();
    insta::assert_snapshot!("digests", s);

    // The config and manifest themselves, so a reviewer sees what changed, not only that it did.
    insta::assert_snapshot!(
        "config",
        std::fs::read_to_string(d.join("config.json")).unwrap()
    );
    insta::assert_snapshot!(
        "manifest",
        std::fs::read_to_string(d.join("manifest.json")).unwrap()
    );
}

/// The push manifest `rko push-manifest` writes for fixed inputs (an image, two tags, an
/// import path), pinned byte for byte: a push manifest without attachments must stay
/// exactly what earlier rko versions wrote, so existing readers (`rko resolve`, older
/// `rko push`) and remote-cache keys are not disturbed.
#[test]
fn golden_push_manifest() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fake_go_binary(&d.join("app"), 62, 300_000);
    rko(
        d,
        &[
            "layer",
            "binary",
            "--binary",
            "app",
            "--import-path",
            "example.com/golden/cmd/app",
            "--platform",
            "linux/amd64",
            "-o",
            "bin.gz",
            "--descriptor",
            "bin.json",
        ],
    );
    rko(
        d,
        &[
            "image",
            "--platform",
            "linux/amd64",
            "--layer",
            "bin.json",
            "--created",
            "1700000000",
            "--config-out",
            "config.json",
            "--manifest-out",
            "manifest.json",
            "--descriptor-out",
            "desc.json",
        ],
    );
    std::fs::create_dir_all(d.join("out")).unwrap();
    rko(
        d,
        &[
            "push-manifest",
            "--root",
            "desc.json",
            "--blob",
            "manifest.json",
            "--blob",
            "config.json",
            "--layer",
            "bin.json=bin.gz",
            "--repository",
            "registry.example.com/golden",
            "--import-path",
            "example.com/golden/cmd/app",
            "--tag",
            "v1",
            "--tag",
            "latest",
            "-o",
            "out/push.json",
        ],
    );
    insta::assert_snapshot!(
        "push_manifest",
        std::fs::read_to_string(d.join("out/push.json")).unwrap()
    );
}
