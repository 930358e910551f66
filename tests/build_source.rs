//! `rko build ./cmd/app`: the binary built from source with the machine's Go, as `ko build`
//! does (`go build -trimpath`, CGO_ENABLED=0, GOOS/GOARCH from the platform, the package's
//! kodata/), giving the same image as building the binary by hand and passing it; the
//! image runs in docker; and each way it can go wrong says so.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{DockerImage, RKO};

const MAIN: &str = r#"package main

import (
	"fmt"
	"os"
	"path/filepath"

	"example.com/src/lib"
)

func main() {
	b, err := os.ReadFile(filepath.Join(os.Getenv("KO_DATA_PATH"), "hello.txt"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s %s", lib.Name(), b)
}
"#;

/// A module example.com/src with a command (cmd/app, with kodata) and a library (lib).
fn module(dir: &Path) {
    common::write_tree(
        dir,
        &[
            ("go.mod", "module example.com/src\n\ngo 1.19\n"),
            ("cmd/app/main.go", MAIN),
            ("cmd/app/kodata/hello.txt", "hello from source"),
            (
                "lib/lib.go",
                "package lib\n\nfunc Name() string { return \"app\" }\n",
            ),
            (
                "broken/main.go",
                "package main\n\nfunc main() { undefined() }\n",
            ),
        ],
    );
}

fn rko(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(RKO);
    cmd.args(args)
        .current_dir(dir)
        .env("GOCACHE", common::go_cache())
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GO111MODULE", "on");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(o: Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "rko failed:\n{err}");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn fails(o: Output, expect: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in:\n{err}");
    }
}

#[test]
fn build_from_source_equals_the_binary_built_by_hand_and_runs() {
    common::require_tools!("go", "docker", "skopeo");
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    module(dir);
    let tar = dir.join("app.tar");
    let name = common::unique_ref("rko-src");
    let from_source = ok(rko(
        dir,
        &[
            "build",
            "./cmd/app",
            "--tarball",
            tar.to_str().unwrap(),
            "--tag",
            &name,
        ],
        &[],
    ));

    // The same bytes by hand: ko's go build, then the binary with its import path and kodata.
    common::run_ok(
        Command::new("go")
            .args(["build", "-trimpath", "-o", "by-hand", "./cmd/app"])
            .current_dir(dir)
            .env("CGO_ENABLED", "0")
            .env("GOOS", "linux")
            .env("GOARCH", "amd64")
            .env("GOCACHE", common::go_cache())
            .env("GOPROXY", "off")
            .env("GOFLAGS", ""),
    );
    let by_hand = ok(rko(
        dir,
        &[
            "build",
            "by-hand",
            "--import-path",
            "example.com/src/cmd/app",
            "--kodata",
            "cmd/app/kodata",
        ],
        &[],
    ));
    assert_eq!(from_source, by_hand);
    // The import path and ko:// name the same package.
    for pkg in ["example.com/src/cmd/app", "ko://example.com/src/cmd/app"] {
        assert_eq!(ok(rko(dir, &["build", pkg], &[])), from_source, "{pkg}");
    }

    // It runs: the binary at /ko-app/app reads its kodata.
    let img = DockerImage::load(&tar, &name);
    let out = img.run(&[]);
    assert_eq!(out.trim(), "app hello from source");

    // Another platform builds another binary (the layer checks it is arm64).
    let arm = ok(rko(
        dir,
        &["build", "./cmd/app", "--platform", "linux/arm64"],
        &[],
    ));
    assert_ne!(arm, from_source);

    // Both at once: an index of exactly those two images (built in parallel), which skopeo
    // reads from the layout.
    let layout = dir.join("multi");
    let index = ok(rko(
        dir,
        &[
            "build",
            "./cmd/app",
            "--platform",
            "linux/amd64,linux/arm64",
            "--layout",
            layout.to_str().unwrap(),
        ],
        &[],
    ));
    let index_json = common::read_json(common::layout_blob(&layout, &index));
    let entries: Vec<(String, String)> = index_json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            (
                format!(
                    "{}/{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                ),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("linux/amd64".to_string(), from_source.clone()),
            ("linux/arm64".to_string(), arm.clone())
        ]
    );
    let raw = common::run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci:{}", layout.display()),
    ]));
    assert_eq!(
        format!("sha256:{}", common::sha256_hex(raw.as_bytes())),
        index
    );
}

#[test]
fn build_from_source_errors_say_what_to_do() {
    common::require_tools!("go");
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    module(dir);
    fails(
        rko(dir, &["build", "./lib"], &[]),
        &["is package lib (example.com/src/lib), not a main package"],
    );
    fails(
        rko(dir, &["build", "./nope"], &[]),
        &[
            "\"./nope\" is not a Go package rko can build here",
            "go list",
        ],
    );
    fails(
        rko(dir, &["build", "./broken"], &[]),
        &["go build of ./broken for linux/amd64 failed", "undefined"],
    );
    fails(
        rko(dir, &["build", "./cmd/app"], &[("PATH", "")]),
        &["no `go` is on PATH", "--go PATH"],
    );
    fails(
        rko(dir, &["build", "./cmd/app", "--go", "/nonexistent/go"], &[]),
        &["--go /nonexistent/go: no such file"],
    );
    fails(
        rko(
            dir,
            &["build", "./cmd/app", "--import-path", "example.com/other"],
            &[],
        ),
        &["does not match the package ./cmd/app, whose import path is example.com/src/cmd/app"],
    );
    // Several platforms need the package, and one provenance statement fits one image.
    fails(
        rko(
            dir,
            &[
                "build",
                "./cmd/app",
                "--platform",
                "linux/amd64,linux/arm64",
                "--provenance",
                "p.json",
            ],
            &[],
        ),
        &["--provenance FILE writes one statement about one image, but 2 platforms"],
    );
    // A platform named twice is a usage error (exit 2), as any bad flag value.
    let o = rko(
        dir,
        &[
            "build",
            "./cmd/app",
            "--platform",
            "linux/amd64,linux/amd64",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("linux/amd64 is named twice"));
    // A binary still needs its import path.
    std::fs::write(dir.join("bin"), b"\x7fELF").unwrap();
    fails(
        rko(dir, &["build", "bin"], &[]),
        &["is a binary, so rko needs its import path", "--import-path"],
    );
    fails(
        rko(
            dir,
            &[
                "build",
                "bin",
                "--import-path",
                "example.com/b",
                "--platform",
                "linux/amd64,linux/arm64",
            ],
            &[],
        ),
        &["is one binary, for one platform, but --platform names 2"],
    );
}

/// (path, bytes) of each regular file of a layer.
type LayerFiles = Vec<(String, Vec<u8>)>;

/// The one image of an OCI layout: its config, and each layer's regular files.
fn layout_image(layout: &Path) -> (serde_json::Value, Vec<LayerFiles>) {
    let index = common::read_json(layout.join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest = common::read_json(common::layout_blob(layout, digest));
    let config = common::read_json(common::layout_blob(
        layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let blob =
                std::fs::File::open(common::layout_blob(layout, l["digest"].as_str().unwrap()))
                    .unwrap();
            let mut ar = tar::Archive::new(flate2::read::MultiGzDecoder::new(blob));
            let mut files = Vec::new();
            for e in ar.entries().unwrap() {
                let mut e = e.unwrap();
                if e.header().entry_type().is_file() {
                    let path = e.path().unwrap().display().to_string();
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
                    files.push((path, bytes));
                }
            }
            files
        })
        .collect();
    (config, layers)
}

#[test]
fn build_debug_puts_delve_on_top_and_builds_without_optimizations() {
    common::require_tools!("go", "dlv");
    let t = tempfile::tempdir().unwrap();
    module(t.path());
    let layout = t.path().join("layout");
    let layout_arg = layout.to_str().unwrap();
    let o = rko(
        t.path(),
        &[
            "build",
            "./cmd/app",
            "--debug",
            "--layout",
            layout_arg,
            "--sbom",
            "none",
        ],
        &[],
    );
    let warnings = String::from_utf8_lossy(&o.stderr).into_owned();
    ok(o);
    let (config, layers) = layout_image(&layout);
    assert_eq!(
        config["config"]["Entrypoint"],
        common::delve_entrypoint("/ko-app/app")
    );
    // Base, kodata, the app, then Delve: the dlv found on PATH, byte for byte.
    let dlv_path = common::run_ok(Command::new("sh").args(["-c", "command -v dlv"]));
    let dlv = std::fs::read(dlv_path.trim()).unwrap();
    // A dynamically linked dlv (Debian's is) will not start on the static base: warned.
    let dynamic = dlv.windows(8).any(|w| w == b"ld-linux");
    assert_eq!(
        warnings.contains("is dynamically linked (it needs /lib"),
        dynamic,
        "{warnings}"
    );
    let top = layers.last().unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].0, "/ko-app/dlv");
    assert!(top[0].1 == dlv, "the Delve layer holds another file");
    // The app was built as ko builds for debugging: -gcflags=all=-N -l.
    let app = &layers[layers.len() - 2];
    assert_eq!(app[0].0, "/ko-app/app");
    let bin = t.path().join("app.bin");
    std::fs::write(&bin, &app[0].1).unwrap();
    let info = common::rko_ok(["buildinfo", bin.to_str().unwrap()]);
    assert!(info.contains("build\t-gcflags=\"all=-N -l\""), "{info}");
    let history = config["history"].as_array().unwrap();
    assert_eq!(
        history.last().unwrap()["comment"],
        "Delve debugger, at /ko-app/dlv"
    );

    // A platform Delve does not debug: built without it, with a warning, as ko.
    let s390x = t.path().join("s390x");
    let o = rko(
        t.path(),
        &[
            "build",
            "./cmd/app",
            "--debug",
            "--platform",
            "linux/s390x",
            "--layout",
            s390x.to_str().unwrap(),
            "--sbom",
            "none",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    ok(o);
    assert!(
        err.contains("Delve debugs linux/amd64 and linux/arm64 only"),
        "{err}"
    );
    let (config, layers) = layout_image(&s390x);
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/ko-app/app"])
    );
    assert_eq!(layers.last().unwrap()[0].0, "/ko-app/app");

    // No Delve anywhere: a clear error, nothing written.
    let go = common::run_ok(Command::new("sh").args(["-c", "command -v go"]));
    let none = t.path().join("none");
    fails(
        rko(
            t.path(),
            &[
                "build",
                "./cmd/app",
                "--debug",
                "--go",
                go.trim(),
                "--layout",
                none.to_str().unwrap(),
            ],
            &[("PATH", "/nonexistent")],
        ),
        &["--debug needs Delve", "--dlv"],
    );
    assert!(!none.exists());
}
