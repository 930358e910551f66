//! Hostile base layouts and inputs (docs/reliability/outputs.md): descriptor digests that
//! carry path traversal or are not hex, a `blobs` directory that is a symlink (followed,
//! every blob still checked against its digest), blobs that are links to devices or FIFOs,
//! a huge `index.json`, a manifest listing 100,000 layers, a kodata tree of 100,000 files
//! and a large sparse binary (peak RSS measured). Every refusal is a clear error, tested.
//!
//! The 4 GiB binary is `#[ignore]`d here (CI streams 128 MiB) and run by
//! scripts/reliability-long.sh.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fake_go_binary, run_ok, sha256_hex};
use serde_json::json;

/// The rko under test: `RKO_BIN` (scripts/reliability-long.sh points it at a release build),
/// else the one cargo built for the tests.
fn rko_bin() -> String {
    std::env::var("RKO_BIN").unwrap_or_else(|_| common::RKO.to_string())
}

fn say(s: &str) {
    let _ = writeln!(std::io::stderr(), "{s}");
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Runs rko with a deadline; returns (exit code, stderr, wall time, peak RSS in KiB read
/// from /proc/PID/status VmHWM while it runs).
fn rko_timed(args: &[String], deadline: Duration) -> (Option<i32>, String, Duration, u64) {
    let start = Instant::now();
    let mut child = Command::new(rko_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut { stderr }, &mut s);
        s
    });
    let mut peak = 0u64;
    let status = loop {
        if let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(l) = st.lines().find(|l| l.starts_with("VmHWM:"))
            && let Some(kb) = l.split_whitespace().nth(1).and_then(|v| v.parse().ok())
        {
            peak = peak.max(kb);
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rko {args:?} did not finish within {deadline:?}: it hangs on hostile input");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = start.elapsed();
    (status.code(), reader.join().unwrap(), took, peak)
}

fn fails(args: &[String], expect: &[&str]) -> String {
    let (code, err, _, _) = rko_timed(args, Duration::from_secs(60));
    assert_eq!(code, Some(1), "rko {args:?} should fail: {err}");
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in: {err}");
    }
    err
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|x| x.to_string()).collect()
}

/// A scratch directory with a binary layer to build images of.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let e = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        fake_go_binary(&e.p("app"), 62, 64 << 10);
        run_ok(Command::new(rko_bin()).args([
            "layer",
            "binary",
            "--binary",
            &s(&e.p("app")),
            "--import-path",
            "example.com/hostile/app",
            "--platform",
            "linux/amd64",
            "-o",
            &s(&e.p("l.tgz")),
            "--descriptor",
            &s(&e.p("l.json")),
        ]));
        e
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// `rko image` on the base `base` (DIR[@sha256:…]).
    fn image_args(&self, base: &str) -> Vec<String> {
        args(&[
            "image",
            "--base",
            base,
            "--platform",
            "linux/amd64",
            "--layer",
            &s(&self.p("l.json")),
            "--config-out",
            &s(&self.p("config.json")),
            "--manifest-out",
            &s(&self.p("manifest.json")),
            "--descriptor-out",
            &s(&self.p("desc.json")),
        ])
    }
}

fn put_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let hex = sha256_hex(bytes);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&hex), bytes).unwrap();
    (format!("sha256:{hex}"), bytes.len() as u64)
}

/// A layout at `dir` whose one image has `layers` (descriptor JSON values, never read) and
/// `diff_ids`; returns the manifest's digest.
fn layout_with(dir: &Path, layers: Vec<serde_json::Value>, diff_ids: Vec<String>) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {}
    });
    let (cd, cs) = put_blob(dir, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": layers,
    });
    let (md, ms) = put_blob(dir, manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms}],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    md
}

fn layer_desc(digest: &str) -> serde_json::Value {
    json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": 10})
}

const BAD_DIGESTS: [&str; 5] = [
    "sha256:../../etc/passwd",
    "sha256:../../../../../../../../../../../../../../../../../../../etc/passwd",
    "sha256:gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg",
    "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
];

#[test]
fn traversal_and_non_hex_digests_in_a_base_layout_are_refused_by_the_parser() {
    let e = Env::new();
    for (i, bad) in BAD_DIGESTS.iter().enumerate() {
        // In a manifest's layer list.
        let dir = e.p(&format!("base{i}"));
        let md = layout_with(
            &dir,
            vec![layer_desc(bad)],
            vec![format!("sha256:{}", "0".repeat(64))],
        );
        let err = fails(
            &e.image_args(&format!("{}@{md}", s(&dir))),
            &["invalid digest", bad, "64 lowercase hex digits"],
        );
        assert!(!err.contains("passwd:"), "nothing was opened: {err}");
        // In index.json.
        let idx = json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": bad, "size": 2}]});
        std::fs::write(dir.join("index.json"), idx.to_string()).unwrap();
        fails(
            &e.image_args(&s(&dir)),
            &["index.json", "invalid digest", bad],
        );
    }
    // And as a blob given to `rko tarball`: the manifest's layer digest is refused.
    let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{}", "1".repeat(64)), "size": 2},
        "layers": [layer_desc("sha256:../../etc/passwd")]});
    std::fs::write(e.p("m.json"), m.to_string()).unwrap();
    let root = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", sha256_hex(m.to_string().as_bytes())),
        "size": m.to_string().len()});
    std::fs::write(e.p("root.json"), root.to_string()).unwrap();
    let out = e.p("t.tar");
    fails(
        &args(&[
            "tarball",
            "--root",
            &s(&e.p("root.json")),
            "--blob",
            &s(&e.p("m.json")),
            "-o",
            &s(&out),
        ]),
        &["invalid digest", "sha256:../../etc/passwd"],
    );
    assert!(!out.exists());
}

/// A layout of the image `rko build` makes of the test binary.
fn built_layout(e: &Env, dir: &Path) -> String {
    run_ok(Command::new(rko_bin()).args([
        "build",
        &s(&e.p("app")),
        "--import-path",
        "example.com/hostile/base",
        "--layout",
        &s(dir),
    ]))
    .trim()
    .to_string()
}

#[test]
fn a_blobs_directory_that_is_a_symlink_is_followed_and_still_verified() {
    let e = Env::new();
    let real = e.p("real");
    built_layout(&e, &real);
    let linked = e.p("linked");
    std::fs::create_dir(&linked).unwrap();
    for f in ["oci-layout", "index.json"] {
        std::fs::copy(real.join(f), linked.join(f)).unwrap();
    }
    std::os::unix::fs::symlink(real.join("blobs"), linked.join("blobs")).unwrap();
    // As a base: followed.
    run_ok(Command::new(rko_bin()).args(e.image_args(&s(&linked))));
    // As --blobs for a tarball: followed.
    let desc = common::read_json(real.join("index.json"))["manifests"][0].clone();
    std::fs::write(e.p("root.json"), desc.to_string()).unwrap();
    run_ok(Command::new(rko_bin()).args([
        "tarball",
        "--root",
        &s(&e.p("root.json")),
        "--blobs",
        &s(&linked),
        "-o",
        &s(&e.p("t.tar")),
    ]));
    // A blob swapped for other bytes behind the link is still caught by its digest.
    let base_manifest_digest = desc["digest"].as_str().unwrap().to_string();
    let base_manifest = std::fs::read(common::layout_blob(&real, &base_manifest_digest)).unwrap();
    let base_cfg = common::parse_json(&String::from_utf8_lossy(&base_manifest))["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let p = common::layout_blob(&real, &base_cfg);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&p, bytes).unwrap();
    fails(
        &e.image_args(&s(&linked)),
        &["does not match its descriptor", "the layout is corrupt"],
    );
}

#[test]
fn blobs_that_are_devices_or_fifos_are_refused_without_reading_them() {
    let e = Env::new();
    let dir = e.p("base");
    let md = layout_with(&dir, vec![], vec![]);
    let manifest = std::fs::read(common::layout_blob(&dir, &md)).unwrap();
    let cfg = common::parse_json(&String::from_utf8_lossy(&manifest))["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let cfg_path = common::layout_blob(&dir, &cfg);
    // A config that is a link to /dev/zero: never read (it would never end).
    std::fs::remove_file(&cfg_path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &cfg_path).unwrap();
    fails(
        &e.image_args(&format!("{}@{md}", s(&dir))),
        &[
            "is not a regular file",
            "a device",
            "expected a manifest, index or config blob",
        ],
    );
    // A FIFO: opening it for reading would block forever.
    std::fs::remove_file(&cfg_path).unwrap();
    run_ok(Command::new("mkfifo").arg(&cfg_path));
    // Opening a FIFO blocks until a writer comes: give it one that writes nothing, so a
    // reader that opened it ends; rko must refuse it, not parse it.
    let fifo = cfg_path.clone();
    let writer = std::thread::spawn(move || {
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
    });
    fails(
        &e.image_args(&format!("{}@{md}", s(&dir))),
        &["is not a regular file", "a named pipe"],
    );
    writer.join().unwrap();
}

#[test]
fn a_huge_index_json_or_manifest_is_refused_before_it_is_read() {
    let e = Env::new();
    let dir = e.p("base");
    let md = layout_with(&dir, vec![], vec![]);
    // A 200 MB index.json (sparse): refused from its size, quickly.
    let f = std::fs::File::create(dir.join("index.json")).unwrap();
    f.set_len(200 << 20).unwrap();
    let (code, err, took, peak) = rko_timed(&e.image_args(&s(&dir)), Duration::from_secs(60));
    say(&format!(
        "hostile: 200 MB index.json refused in {took:.2?}, peak RSS {peak} KiB: {}",
        err.trim()
    ));
    assert_eq!(code, Some(1), "{err}");
    for want in [
        "index.json",
        "is too large",
        "209715200 bytes",
        "at most 16777216 bytes",
    ] {
        assert!(err.contains(want), "expected {want:?} in: {err}");
    }
    assert!(
        peak < 100 << 10,
        "index.json was not read whole: peak {peak} KiB"
    );
    // A manifest whose descriptor claims 1 GiB: refused before it is read.
    let manifest = std::fs::read(common::layout_blob(&dir, &md)).unwrap();
    let idx = json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": 1u64 << 30}]});
    std::fs::write(dir.join("index.json"), idx.to_string()).unwrap();
    assert!(manifest.len() < 1000);
    fails(
        &e.image_args(&s(&dir)),
        &[
            "is too large",
            "1073741824 bytes",
            "manifest, index or config",
        ],
    );
    // The same manifest as a tarball root.
    std::fs::write(e.p("root.json"), idx["manifests"][0].to_string()).unwrap();
    fails(
        &args(&[
            "tarball",
            "--root",
            &s(&e.p("root.json")),
            "--blobs",
            &s(&dir),
            "-o",
            &s(&e.p("t.tar")),
        ]),
        &["is too large", "1073741824 bytes"],
    );
}

#[test]
fn a_base_manifest_listing_100000_layers_works() {
    let e = Env::new();
    let dir = e.p("base");
    let n = 100_000;
    let layers: Vec<serde_json::Value> = (0..n)
        .map(|i| layer_desc(&format!("sha256:{:064x}", i + 1)))
        .collect();
    let diff_ids: Vec<String> = (0..n)
        .map(|i| format!("sha256:{:064x}", i + 1_000_000))
        .collect();
    let md = layout_with(&dir, layers, diff_ids);
    let msize = std::fs::metadata(common::layout_blob(&dir, &md))
        .unwrap()
        .len();
    let (code, err, took, peak) = rko_timed(
        &e.image_args(&format!("{}@{md}", s(&dir))),
        Duration::from_secs(120),
    );
    say(&format!(
        "hostile: base manifest of {n} layers ({msize} bytes): rko image took {took:.2?}, peak RSS {peak} KiB"
    ));
    assert_eq!(code, Some(0), "{err}");
    let m = common::read_json(e.p("manifest.json"));
    assert_eq!(m["layers"].as_array().unwrap().len(), n + 1);
}

/// A 100,000-file kodata tree: 100 directories of 1,000 small files.
#[test]
fn a_kodata_tree_of_100000_files_finishes_with_bounded_memory() {
    let e = Env::new();
    // On a tmpfs when there is one: the figure is rko's, not the disk's (making and
    // deleting 100,000 files on a busy disk takes minutes).
    let shm = Path::new("/dev/shm");
    let tree = match shm.is_dir() {
        true => tempfile::tempdir_in(shm).unwrap_or_else(|_| tempfile::tempdir().unwrap()),
        false => tempfile::tempdir().unwrap(),
    };
    let kodata = tree.path().join("kodata");
    let start = Instant::now();
    for d in 0..100 {
        let sub = kodata.join(format!("d{d:03}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..1000 {
            std::fs::write(sub.join(format!("f{f:04}.txt")), format!("file {d} {f}\n")).unwrap();
        }
    }
    let made = start.elapsed();
    let (code, err, took, peak) = rko_timed(
        &args(&[
            "layer",
            "kodata",
            "--dir",
            &s(&kodata),
            "--import-path",
            "example.com/k",
            "-o",
            &s(&e.p("k.tgz")),
            "--descriptor",
            &s(&e.p("k.json")),
        ]),
        Duration::from_secs(300),
    );
    say(&format!(
        "hostile: kodata of 100000 files (made in {made:.2?}): rko layer kodata took {took:.2?}, peak RSS {peak} KiB"
    ));
    assert_eq!(code, Some(0), "{err}");
    let desc = common::read_json(e.p("k.json"));
    assert!(desc["uncompressedSize"].as_u64().unwrap() > 100_000 * 1024);
    // The tree is held in memory (paths and sizes), about 100-200 bytes a file.
    assert!(
        peak < 200 << 10,
        "peak RSS {peak} KiB for 100,000 kodata files"
    );
}

/// A sparse ELF with Go build info at the start and `size` bytes in all.
fn sparse_go_binary(path: &Path, size: u64) {
    fake_go_binary(path, 62, 8192);
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(size).unwrap();
}

/// Peak RSS of `rko layer binary` on a sparse binary of `size` bytes.
fn layer_peak(e: &Env, size: u64) -> (Duration, u64) {
    let bin = e.p(&format!("big-{size}"));
    sparse_go_binary(&bin, size);
    let (code, err, took, peak) = rko_timed(
        &args(&[
            "layer",
            "binary",
            "--binary",
            &s(&bin),
            "--import-path",
            "example.com/big",
            "--platform",
            "linux/amd64",
            "-o",
            &s(&e.p("big.tgz")),
            "--descriptor",
            &s(&e.p("big.json")),
        ]),
        Duration::from_secs(1200),
    );
    assert_eq!(code, Some(0), "{err}");
    let desc = common::read_json(e.p("big.json"));
    assert!(desc["uncompressedSize"].as_u64().unwrap() > size);
    let _ = std::fs::remove_file(&bin);
    let _ = std::fs::remove_file(e.p("big.tgz"));
    say(&format!(
        "hostile: sparse binary of {} MiB: rko layer binary took {took:.2?}, peak RSS {peak} KiB",
        size >> 20
    ));
    (took, peak)
}

fn big_binary_streams(big: u64) {
    let e = Env::new();
    let (_, small_peak) = layer_peak(&e, 16 << 20);
    let (_, big_peak) = layer_peak(&e, big);
    // Memory is flat: the big binary costs no more than a few MiB over a small one.
    assert!(
        big_peak < small_peak + (16 << 10),
        "peak RSS grows with the binary: {small_peak} KiB at 16 MiB, {big_peak} KiB at {} MiB",
        big >> 20
    );
}

/// CI's short version (a debug build hashes and compresses at only ~10 MB/s).
#[test]
fn a_128_mib_sparse_binary_streams_with_flat_memory() {
    big_binary_streams(128 << 20);
}

#[test]
#[ignore = "about a minute or more; scripts/reliability-long.sh runs it"]
fn a_4_gib_sparse_binary_streams_with_flat_memory() {
    big_binary_streams(4 << 30);
}
