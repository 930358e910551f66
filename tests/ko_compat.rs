//! ko compatibility: the uncompressed layer tars rko writes are byte-identical to the ones
//! ko writes for the same binary and kodata tree, so the diff_ids match. The oracle is
//! tests/goref/kotar.go, a Go standard-library program that writes the tars as ko's
//! `tarBinary` and `tarKoData` do, with Go's own `archive/tar`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

mod common;
use common::{RKO, go_build, go_cache, run_ok as run};

/// Builds the Go oracle once per test process.
fn kotar() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rko-kotar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("kotar");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goref/kotar.go");
        let st = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg(&src)
            .env("GO111MODULE", "off")
            .env("GOCACHE", go_cache())
            .status()
            .expect("`go` must be installed (Debian golang-go)");
        assert!(st.success(), "building the Go oracle failed");
        out
    })
    .clone()
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn descriptor(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Asserts rko's layer (blob + descriptor) equals the oracle's tar, and says where not.
fn assert_same_tar(blob: &Path, desc: &Path, oracle: &Path) {
    let ours = gunzip(blob);
    let theirs = std::fs::read(oracle).unwrap();
    if ours != theirs {
        let at = ours
            .iter()
            .zip(&theirs)
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(theirs.len()));
        panic!(
            "layer tar differs from ko's at byte {at} (block {}, offset {}): ours {} bytes, ko's {} bytes",
            at / 512,
            at % 512,
            ours.len(),
            theirs.len()
        );
    }
    let d = descriptor(desc);
    assert_eq!(
        d["diffID"],
        sha256(&theirs),
        "diffID must be the sha256 of ko's tar"
    );
    assert_eq!(d["uncompressedSize"], theirs.len() as u64);
}

#[test]
fn binary_layer_is_byte_identical_to_kos() {
    common::require_tools!("go");
    let t = tempfile::tempdir().unwrap();
    let bin = go_build(
        t.path(),
        "app",
        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"compat\") }\n",
        "amd64",
    );
    for (import_path, name, app_path) in [
        ("example.com/compat/cmd/app", None, "/ko-app/app"),
        ("github.com/org/repo/cmd/server", None, "/ko-app/server"),
        ("example.com/x", Some("custom-name"), "/ko-app/custom-name"),
    ] {
        let oracle = t.path().join("ko.tar");
        run(Command::new(kotar())
            .arg("binary")
            .arg(&bin)
            .arg(app_path)
            .arg(&oracle));
        let (blob, desc) = (t.path().join("l.tar.gz"), t.path().join("l.json"));
        let mut cmd = Command::new(RKO);
        cmd.args(["layer", "binary", "--binary"]).arg(&bin);
        cmd.args([
            "--import-path",
            import_path,
            "--platform",
            "linux/amd64",
            "-o",
        ])
        .arg(&blob)
        .arg("--descriptor")
        .arg(&desc);
        if let Some(n) = name {
            cmd.args(["--name", n]);
        }
        run(&mut cmd);
        assert_same_tar(&blob, &desc, &oracle);
        assert_eq!(descriptor(&desc)["content"]["path"], app_path);
    }
}

/// ko's `linux_capabilities`: the binary's entry carries `security.capability` as a PAX
/// record. Checked against Go's archive/tar with the kernel's vfs_cap_data encoded by the
/// oracle itself (bit masks from linux/capability.h), and, as root, by extracting the
/// layer with GNU tar and reading the capabilities back with getcap(8).
#[test]
fn binary_layer_with_linux_capabilities_is_byte_identical_to_kos() {
    common::require_tools!("go");
    let t = tempfile::tempdir().unwrap();
    let bin = go_build(t.path(), "app", "package main\n\nfunc main() {}\n", "amd64");
    const CHOWN: u64 = 1 << 0;
    const KILL: u64 = 1 << 5;
    const NET_BIND_SERVICE: u64 = 1 << 10;
    const PERFMON: u64 = 1 << 38;
    const BPF: u64 = 1 << 39;
    let long_name = "n".repeat(120);
    // (terms, --name, permitted, inheritable, effective, what getcap prints)
    type Case<'a> = (&'a [&'a str], Option<&'a str>, u64, u64, bool, &'a str);
    let cases: [Case; 4] = [
        (
            &["net_bind_service"],
            None,
            NET_BIND_SERVICE,
            0,
            false,
            "cap_net_bind_service=p",
        ),
        (
            &["bpf,perfmon=ep"],
            None,
            BPF | PERFMON,
            0,
            true,
            "cap_perfmon,cap_bpf=ep",
        ),
        (
            &["CAP_CHOWN=pi", "kill"],
            None,
            CHOWN | KILL,
            CHOWN,
            false,
            "cap_chown=ip cap_kill+p",
        ),
        // A name too long for USTAR: the path record and the xattr, sorted by key.
        (&["39=p"], Some(&long_name), BPF, 0, false, "cap_bpf=p"),
    ];
    let root = common::run_ok(Command::new("id").arg("-u")).trim() == "0";
    for (terms, name, permitted, inheritable, effective, shown) in cases {
        let app_path = format!("/ko-app/{}", name.unwrap_or("app"));
        let oracle = t.path().join("ko.tar");
        run(Command::new(kotar())
            .arg("binary")
            .arg(&bin)
            .arg(&app_path)
            .arg(&oracle)
            .arg(permitted.to_string())
            .arg(inheritable.to_string())
            .arg(if effective { "1" } else { "0" }));
        let (blob, desc) = (t.path().join("l.tar.gz"), t.path().join("l.json"));
        let mut cmd = Command::new(RKO);
        cmd.args(["layer", "binary", "--binary"]).arg(&bin);
        cmd.args([
            "--import-path",
            "example.com/caps/cmd/app",
            "--platform",
            "linux/amd64",
        ]);
        cmd.arg("-o").arg(&blob).arg("--descriptor").arg(&desc);
        for term in terms {
            cmd.args(["--linux-capability", term]);
        }
        if let Some(n) = name {
            cmd.args(["--name", n]);
        }
        run(&mut cmd);
        assert_same_tar(&blob, &desc, &oracle);

        if root {
            let x = tempfile::tempdir_in(t.path()).unwrap();
            run(Command::new("tar")
                .args(["--xattrs", "--xattrs-include=security.capability", "-xzf"])
                .arg(&blob)
                .arg("-C")
                .arg(x.path()));
            let file = x.path().join(app_path.trim_start_matches('/'));
            let got = common::run_ok(Command::new("getcap").arg(&file));
            assert_eq!(
                got.trim(),
                format!("{} {shown}", file.display()),
                "{terms:?}"
            );
        }
    }
    // No capability permitted or inheritable: no record, the plain layer.
    let plain = t.path().join("plain.tar");
    run(Command::new(kotar())
        .arg("binary")
        .arg(&bin)
        .arg("/ko-app/app")
        .arg(&plain));
    let (blob, desc) = (t.path().join("e.tar.gz"), t.path().join("e.json"));
    run(Command::new(RKO)
        .args(["layer", "binary", "--binary"])
        .arg(&bin)
        .args([
            "--import-path",
            "example.com/caps/cmd/app",
            "--platform",
            "linux/amd64",
        ])
        .args(["--linux-capability", "chown=e", "-o"])
        .arg(&blob)
        .arg("--descriptor")
        .arg(&desc));
    assert_same_tar(&blob, &desc, &plain);
    // An unknown name: the valid ones listed, nothing written.
    let out = Command::new(RKO)
        .args(["layer", "binary", "--binary"])
        .arg(&bin)
        .args(["--import-path", "x/y", "--platform", "linux/amd64"])
        .args(["--linux-capability", "net_bind", "-o"])
        .arg(t.path().join("bad.tar.gz"))
        .arg("--descriptor")
        .arg(t.path().join("bad.json"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("unknown capability \"net_bind\"") && stderr.contains("NET_BIND_SERVICE"),
        "{stderr}"
    );
    assert!(!t.path().join("bad.tar.gz").exists());
}

/// ko's debug image (`ko build --debug`): Delve in its own layer at /ko-app/dlv, shaped as
/// the binary layer (capabilities included), after the app's; the entrypoint runs the app
/// under `dlv exec`, listening on :40000; the history says so.
#[test]
fn debug_image_has_kos_delve_layer_and_entrypoint() {
    common::require_tools!("go");
    let t = tempfile::tempdir().unwrap();
    let app = go_build(t.path(), "app", "package main\n\nfunc main() {}\n", "amd64");
    let dlv_dir = t.path().join("dlv");
    std::fs::create_dir_all(&dlv_dir).unwrap();
    // A stand-in for a static linux/amd64 dlv: any Go binary has the layer's shape.
    let dlv = go_build(
        &dlv_dir,
        "dlv",
        "package main\n\nfunc main() { println(1) }\n",
        "amd64",
    );
    let layer = |bin: &Path, name: &str, extra: &[&str]| {
        let (blob, desc) = (
            t.path().join(format!("{name}.tar.gz")),
            t.path().join(format!("{name}.json")),
        );
        run(Command::new(RKO)
            .args(["layer", "binary", "--binary"])
            .arg(bin)
            .args([
                "--import-path",
                "example.com/debug/cmd/app",
                "--platform",
                "linux/amd64",
            ])
            .args(extra)
            .arg("-o")
            .arg(&blob)
            .arg("--descriptor")
            .arg(&desc));
        (blob, desc)
    };
    let (_, app_desc) = layer(&app, "app", &["--linux-capability", "net_bind_service"]);
    let (dlv_blob, dlv_desc) = layer(
        &dlv,
        "dlv",
        &["--delve", "--linux-capability", "net_bind_service"],
    );
    // The Delve layer is ko's buildLayer of dlv: the binary layer's bytes at /ko-app/dlv,
    // with the same capabilities.
    let oracle = t.path().join("ko-dlv.tar");
    run(Command::new(kotar())
        .arg("binary")
        .arg(&dlv)
        .arg("/ko-app/dlv")
        .arg(&oracle)
        .args([(1u64 << 10).to_string(), "0".into(), "0".into()]));
    assert_same_tar(&dlv_blob, &dlv_desc, &oracle);
    let content = &descriptor(&dlv_desc)["content"];
    assert_eq!(
        (content["kind"].as_str(), content["path"].as_str()),
        (Some("delve"), Some("/ko-app/dlv"))
    );

    // rko image of the app's layer, then these; the config to `out`.
    let image = |more: &[&Path], out: &Path| {
        let mut cmd = Command::new(RKO);
        cmd.args([
            "image",
            "--base",
            "static",
            "--platform",
            "linux/amd64",
            "--layer",
        ])
        .arg(&app_desc);
        for d in more {
            cmd.arg("--layer").arg(d);
        }
        cmd.arg("--config-out").arg(out).output().unwrap()
    };
    let config = t.path().join("config.json");
    let out = image(&[&dlv_desc], &config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = common::read_json(&config);
    assert_eq!(
        cfg["config"]["Entrypoint"],
        common::delve_entrypoint("/ko-app/app")
    );
    let history = cfg["history"].as_array().unwrap();
    let last = &history[history.len() - 1];
    assert_eq!(last["comment"], "Delve debugger, at /ko-app/dlv");
    assert_eq!(
        last["created_by"],
        "ko build ko://example.com/debug/cmd/app"
    );
    assert_eq!(
        history[history.len() - 2]["comment"],
        "go build output, at /ko-app/app"
    );

    // Two Delve layers: refused, saying what is allowed.
    let out = image(&[&dlv_desc, &dlv_desc], &t.path().join("two.json"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("2 Delve layers given"),
        "{stderr}"
    );
}

/// A kodata tree with what makes tar headers interesting: nesting, names sorting around
/// '/', a path long enough for USTAR's prefix field, a name too long for it (PAX), a
/// non-ASCII name (PAX), empty and block-sized files, an empty directory, and symlinks to a
/// file and to a directory.
fn kodata_tree(root: &Path) {
    let w = |p: &str, content: &[u8]| {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    };
    w("a/b/c.txt", b"nested\n");
    w(
        "a.txt",
        b"sorts after the directory a, as filepath.Walk visits it\n",
    );
    w("a-b.txt", b"dash\n");
    w("empty.txt", b"");
    w("block.bin", &vec![7u8; 512]);
    w("odd.bin", &vec![9u8; 513]);
    let long_dir = "d".repeat(110);
    w(
        &format!("{long_dir}/in-a-long-directory.txt"),
        b"ustar prefix\n",
    );
    w(&format!("{}.txt", "n".repeat(120)), b"pax path\n");
    w("ünïcødé.txt", b"pax path, non-ASCII\n");
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
    std::fs::create_dir_all(root.join("links")).unwrap();
    std::os::unix::fs::symlink("../a.txt", root.join("links/file-link.txt")).unwrap();
    std::os::unix::fs::symlink("../a", root.join("links/dir-link")).unwrap();
}

fn rko_kodata(t: &Path, args: &[&str], mtime: Option<&str>) -> (PathBuf, PathBuf) {
    let (blob, desc) = (t.join("k.tar.gz"), t.join("k.json"));
    let mut cmd = Command::new(RKO);
    cmd.args([
        "layer",
        "kodata",
        "--import-path",
        "example.com/compat/cmd/app",
    ])
    .args(args);
    cmd.arg("-o")
        .arg(&blob)
        .arg("--descriptor")
        .arg(&desc)
        .env_remove("KO_DATA_DATE_EPOCH");
    if let Some(m) = mtime {
        cmd.args(["--mtime", m]);
    }
    run(&mut cmd);
    (blob, desc)
}

/// The oracle's kodata layer (`mode`: "kodata" or "kodata-windows") of `dir` at `out`, with
/// KO_DATA_DATE_EPOCH `mtime` (unset: ko's zero time) and no widened symlink root.
fn ko_kodata(mode: &str, dir: &Path, out: &Path, mtime: Option<&str>) {
    let mut ko = Command::new(kotar());
    ko.arg(mode)
        .arg(dir)
        .arg(out)
        .env_remove("KO_DATA_PATH_ALLOWED_ROOT");
    match mtime {
        Some(m) => ko.env("KO_DATA_DATE_EPOCH", m),
        None => ko.env_remove("KO_DATA_DATE_EPOCH"),
    };
    run(&mut ko);
}

#[test]
fn kodata_layer_is_byte_identical_to_kos() {
    common::require_tools!("go");
    let t = tempfile::tempdir().unwrap();
    let kd = t.path().join("kodata");
    kodata_tree(&kd);
    for mtime in [None, Some("1700000000")] {
        let oracle = t.path().join("ko.tar");
        ko_kodata("kodata", &kd, &oracle, mtime);
        let (blob, desc) = rko_kodata(t.path(), &["--dir", kd.to_str().unwrap()], mtime);
        assert_same_tar(&blob, &desc, &oracle);
    }
}

#[test]
fn missing_kodata_dir_gives_kos_three_directories() {
    common::require_tools!("go");
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("no-such-kodata");
    let oracle = t.path().join("ko.tar");
    ko_kodata("kodata", &missing, &oracle, None);
    let (blob, desc) = rko_kodata(t.path(), &["--dir", missing.to_str().unwrap()], None);
    assert_same_tar(&blob, &desc, &oracle);
    assert_eq!(std::fs::read(&oracle).unwrap().len(), 5 * 512);
}

#[test]
fn pairs_as_a_build_system_passes_them_give_the_same_bytes_as_the_directory() {
    common::require_tools!("go");
    let t = tempfile::tempdir().unwrap();
    let kd = t.path().join("kodata");
    std::fs::create_dir_all(kd.join("static/css")).unwrap();
    std::fs::write(kd.join("static/index.html"), "<h1>hi</h1>\n").unwrap();
    std::fs::write(kd.join("static/css/site.css"), "h1{}\n").unwrap();
    std::fs::write(kd.join("config.yaml"), "a: 1\n").unwrap();
    // The build system's inputs: symlinks in another tree (like a sandbox) to the sources.
    let sandbox = t.path().join("sandbox");
    std::fs::create_dir_all(&sandbox).unwrap();
    let mut pairs = Vec::new();
    // Given out of order: the layer must not depend on argument order.
    for (i, rel) in ["static/index.html", "config.yaml", "static/css/site.css"]
        .iter()
        .enumerate()
    {
        let link = sandbox.join(format!("input{i}"));
        std::os::unix::fs::symlink(kd.join(rel), &link).unwrap();
        pairs.push(format!("{rel}={}", link.display()));
    }
    let (dir_blob, dir_desc) = rko_kodata(t.path(), &["--dir", kd.to_str().unwrap()], Some("0"));
    let dir_tar = gunzip(&dir_blob);
    let dir_diff = descriptor(&dir_desc)["diffID"].clone();
    let mut args = Vec::new();
    for p in &pairs {
        args.push("--file");
        args.push(p.as_str());
    }
    let (pair_blob, pair_desc) = rko_kodata(t.path(), &args, Some("0"));
    assert_eq!(gunzip(&pair_blob), dir_tar);
    assert_eq!(descriptor(&pair_desc)["diffID"], dir_diff);

    let oracle = t.path().join("ko.tar");
    ko_kodata("kodata", &kd, &oracle, None);
    assert_eq!(std::fs::read(&oracle).unwrap(), dir_tar);
}

/// A PE binary for windows/`goarch`.
fn windows_binary(t: &Path, goarch: &str) -> PathBuf {
    common::go_build_for(
        t,
        &format!("app-{goarch}.exe"),
        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"windows\") }\n",
        "windows",
        goarch,
    )
}

/// ko's Windows binary layer: `Hives`, `Files`, `Files/ko-app`, then the binary at
/// `Files/ko-app/<name>` (no .exe) with the `MSWINDOWS.rawsd` record. Linux capabilities
/// are ko's `linux` case only: asked for on windows, they change nothing.
#[test]
fn windows_binary_layer_is_byte_identical_to_kos() {
    common::require_tools!("go");
    let t = tempfile::tempdir().unwrap();
    for goarch in ["amd64", "arm64"] {
        let bin = windows_binary(t.path(), goarch);
        let oracle = t.path().join("ko.tar");
        run(Command::new(kotar())
            .arg("binary-windows")
            .arg(&bin)
            .arg("/ko-app/app")
            .arg(&oracle));
        for caps in [&[][..], &["--linux-capability", "net_bind_service"][..]] {
            let (blob, desc) = (t.path().join("l.tar.gz"), t.path().join("l.json"));
            run(Command::new(RKO)
                .args(["layer", "binary", "--binary"])
                .arg(&bin)
                .args(["--import-path", "example.com/compat/cmd/app", "--platform"])
                .arg(format!("windows/{goarch}"))
                .args(caps)
                .arg("-o")
                .arg(&blob)
                .arg("--descriptor")
                .arg(&desc));
            assert_same_tar(&blob, &desc, &oracle);
            let d = descriptor(&desc);
            assert_eq!(d["content"]["path"], "/ko-app/app");
            assert_eq!(d["content"]["windows"], true);
        }
        // What the record is: base64 of a self-relative security descriptor.
        let tar = std::fs::read(&oracle).unwrap();
        let rec = b"MSWINDOWS.rawsd=AQAAgBQAAAAkAAAAAAAAAAAAAAABAgAAAAAABSAAAAAhAgAAAQIAAAAAAAUgAAAAIQIAAA==\n";
        assert!(tar.windows(rec.len()).any(|w| w == rec));
    }
}

/// ko's Windows kodata layer: `Hives`, `Files`, `Files/var`, `Files/var/run`,
/// `Files/var/run/ko`, the tree below with `MSWINDOWS.rawsd` on every file, and symlinks
/// skipped (with a warning naming each), for ko's zero time and for KO_DATA_DATE_EPOCH; a
/// missing directory; and the same bytes from a build system's pairs.
#[test]
fn windows_kodata_layer_is_byte_identical_to_kos() {
    common::require_tools!("go");
    let t = tempfile::tempdir().unwrap();
    let kd = t.path().join("kodata");
    kodata_tree(&kd);
    let windows = ["--platform", "windows/amd64", "--dir", kd.to_str().unwrap()];
    for mtime in [None, Some("1700000000")] {
        let oracle = t.path().join("ko.tar");
        ko_kodata("kodata-windows", &kd, &oracle, mtime);
        let (blob, desc) = rko_kodata(t.path(), &windows, mtime);
        assert_same_tar(&blob, &desc, &oracle);
        assert_eq!(descriptor(&desc)["content"]["windows"], true);
        // The links are not in the layer (ko skips them), the files they point at are.
        let listing = String::from_utf8_lossy(&std::fs::read(&oracle).unwrap()).into_owned();
        assert!(!listing.contains("file-link.txt") && !listing.contains("dir-link"));
        assert!(listing.contains("Files/var/run/ko/a/b/c.txt"));
    }
    let o = Command::new(RKO)
        .args(["layer", "kodata", "--import-path", "example.com/x"])
        .args(windows)
        .arg("-o")
        .arg(t.path().join("w.tgz"))
        .arg("--descriptor")
        .arg(t.path().join("w.json"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    for link in ["links/dir-link", "links/file-link.txt"] {
        assert!(
            err.contains(&format!("skipping the symlink {}", kd.join(link).display())),
            "{err}"
        );
    }

    // A missing directory: ko's five directories.
    let missing = t.path().join("no-such-kodata");
    let oracle = t.path().join("ko.tar");
    ko_kodata("kodata-windows", &missing, &oracle, None);
    let args = [
        "--platform",
        "windows/arm64",
        "--dir",
        missing.to_str().unwrap(),
    ];
    let (blob, desc) = rko_kodata(t.path(), &args, None);
    assert_same_tar(&blob, &desc, &oracle);
    assert_eq!(std::fs::read(&oracle).unwrap().len(), 7 * 512);

    // Pairs (a build system's inputs, themselves symlinks) are read, not skipped.
    let plain = t.path().join("plain");
    std::fs::create_dir_all(plain.join("static")).unwrap();
    std::fs::write(plain.join("static/index.html"), "<h1>hi</h1>\n").unwrap();
    std::fs::write(plain.join("config.yaml"), "a: 1\n").unwrap();
    let sandbox = t.path().join("sandbox");
    std::fs::create_dir_all(&sandbox).unwrap();
    let mut args = vec!["--platform".to_string(), "windows/amd64".to_string()];
    for (i, rel) in ["static/index.html", "config.yaml"].iter().enumerate() {
        let link = sandbox.join(format!("input{i}"));
        std::os::unix::fs::symlink(plain.join(rel), &link).unwrap();
        args.extend(["--file".to_string(), format!("{rel}={}", link.display())]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (blob, _) = rko_kodata(t.path(), &args, None);
    ko_kodata("kodata-windows", &plain, &oracle, None);
    assert_eq!(gunzip(&blob), std::fs::read(&oracle).unwrap());
}

/// A windows/amd64 image as ko makes it: its two layers equal the oracle's (so the config's
/// diff_ids are ko's), the entrypoint is `C:\ko-app\<name>`, PATH and KO_DATA_PATH are
/// ko's Windows values; skopeo and umoci read it (umoci's runtime bundle is Linux-only, so
/// its raw unpack gives the files), and the image-spec schemas accept the layout.
#[test]
fn windows_image_has_kos_layers_and_config_and_other_tools_read_it() {
    common::require_tools!("go", "skopeo", "umoci", "python3");
    let t = tempfile::tempdir().unwrap();
    let bin = windows_binary(t.path(), "amd64");
    let kd = t.path().join("kodata");
    std::fs::create_dir_all(kd.join("static")).unwrap();
    std::fs::write(kd.join("static/index.html"), "<h1>windows</h1>\n").unwrap();
    // A link, which ko's Windows layer skips (and so must the provenance's kodata files).
    std::os::unix::fs::symlink("static/index.html", kd.join("link.html")).unwrap();
    let layout = t.path().join("layout");
    let provenance = t.path().join("provenance.json");
    let digest = run(Command::new(RKO)
        .arg("build")
        .arg(&bin)
        .args([
            "--import-path",
            "example.com/compat/cmd/app",
            "--base",
            "scratch",
        ])
        .arg("--kodata")
        .arg(&kd)
        .arg("--layout")
        .arg(&layout)
        .args(["--sbom", "none", "--provenance"])
        .arg(&provenance)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("KO_DATA_DATE_EPOCH"));
    let digest = digest.trim();
    let (ko_bin, ko_kd) = (t.path().join("bin.tar"), t.path().join("kodata.tar"));
    run(Command::new(kotar())
        .arg("binary-windows")
        .arg(&bin)
        .arg("/ko-app/app")
        .arg(&ko_bin));
    ko_kodata("kodata-windows", &kd, &ko_kd, None);
    let manifest = common::read_json(common::layout_blob(&layout, digest));
    let config = common::read_json(common::layout_blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    assert_eq!(config["os"], "windows");
    assert_eq!(config["architecture"], "amd64");
    let want_diff_ids: Vec<String> = [&ko_kd, &ko_bin]
        .iter()
        .map(|p| sha256(&std::fs::read(p).unwrap()))
        .collect();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!(want_diff_ids)
    );
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!([r"C:\ko-app\app"])
    );
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!([r"PATH=C:\ko-app", r"KO_DATA_PATH=C:\var\run\ko"])
    );

    let inspect = common::parse_json(&run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}", layout.display()))));
    assert_eq!(inspect["config"]["digest"], manifest["config"]["digest"]);
    let inspect = common::parse_json(&run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}", layout.display()))));
    assert_eq!(inspect["Os"], "windows");
    assert_eq!(inspect["Digest"], digest);

    let tagged = t.path().join("tagged");
    run(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}", layout.display()),
        &format!("oci:{}:img", tagged.display()),
    ]));
    let stat = run(Command::new("umoci")
        .args(["stat", "--image"])
        .arg(format!("{}:img", tagged.display())));
    assert!(stat.contains("go build output, at /ko-app/app"), "{stat}");
    assert!(stat.contains("kodata contents, at $KO_DATA_PATH"), "{stat}");
    let rootfs = t.path().join("rootfs");
    run(Command::new("umoci")
        .args(["raw", "unpack", "--rootless", "--image"])
        .arg(format!("{}:img", tagged.display()))
        .arg(&rootfs));
    assert!(
        std::fs::read(rootfs.join("Files/ko-app/app")).unwrap() == std::fs::read(&bin).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("Files/var/run/ko/static/index.html")).unwrap(),
        "<h1>windows</h1>\n"
    );
    assert!(rootfs.join("Hives").is_dir());
    assert!(!rootfs.join("Files/var/run/ko/link.html").exists());
    let statement = std::fs::read_to_string(&provenance).unwrap();
    assert!(
        statement.contains("kodata/static/index.html"),
        "{statement}"
    );
    assert!(!statement.contains("link.html"), "{statement}");
    let out = run(Command::new("python3")
        .arg("/work/shared/oci-schema/validate.py")
        .arg(&layout));
    assert!(out.contains(", 0 errors"), "{out}");
}
