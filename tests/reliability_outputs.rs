//! Crash safety of rko's outputs (docs/reliability/outputs.md):
//! - `kill -9` at random moments during `rko layer binary`, `rko tarball`, `rko layout` and
//!   `rko pull --eager` (from a local registry): at the output path there is only ever the
//!   complete output or nothing, never a partial file or directory; a re-run succeeds with
//!   the same bytes, and removes the `.rko-tmp-*` temporaries the killed run left.
//! - A full disk (a small tmpfs, as root): a clear error naming the output and ENOSPC, a
//!   non-zero exit, no output and no temporaries.
//!
//! The kill moments are drawn from a seeded generator; the seed is printed, and
//! `RKO_CRASH_SEED=N` draws the same moments again (the moments are times, so what a kill
//! interrupts still varies with the machine's speed). `RKO_CRASH_TRIALS` (trials per
//! command, default 25: 100 in all) and `RKO_CRASH_BINARY_MB` (the binary's size, default
//! 4) make the long run of scripts/reliability-long.sh.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::registry::{Registry, RegistryOptions};
use common::{fake_go_binary, run_ok, sha256_hex};

/// Printed past the harness's capture, so the figures show in every run.
/// The rko under test: `RKO_BIN` (scripts/reliability-long.sh points it at a release build),
/// else the one cargo built for the tests.
fn rko_bin() -> String {
    std::env::var("RKO_BIN").unwrap_or_else(|_| common::RKO.to_string())
}

fn say(s: &str) {
    let _ = writeln!(std::io::stderr(), "{s}");
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// splitmix64: small, seedable, good enough to spread kill moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One seed for the whole run (each command's kill moments are drawn from it).
fn seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(draw_seed)
}

fn draw_seed() -> u64 {
    std::env::var("RKO_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                % 1_000_000_007
        })
}

/// What is at a path: nothing, a file's digest, or a directory's files and their digests.
#[derive(Debug, PartialEq, Eq, Clone)]
enum State {
    Absent,
    File(String),
    Dir(BTreeMap<String, String>),
}

fn state(path: &Path) -> State {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return State::Absent;
    };
    if meta.is_file() {
        return State::File(sha256_hex(&std::fs::read(path).unwrap()));
    }
    let mut files = BTreeMap::new();
    let mut todo = vec![path.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(path).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                files.insert(format!("{rel}/"), String::new());
                todo.push(p);
            } else {
                files.insert(rel, sha256_hex(&std::fs::read(&p).unwrap()));
            }
        }
    }
    State::Dir(files)
}

fn temporaries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".rko-tmp-"))
        .count()
}

/// A command under test: its arguments, and the outputs it writes (all in `out_dir`).
struct Target {
    name: &'static str,
    args: Vec<String>,
    outputs: Vec<PathBuf>,
    out_dir: PathBuf,
}

#[derive(Default, Debug)]
struct Tally {
    trials: u64,
    killed: u64,
    finished_first: u64,
    absent: u64,
    complete: u64,
    partial: u64,
    temporaries_after_kill: u64,
    temporaries_after_rerun: u64,
    reruns_ok: u64,
}

fn rko_cmd(args: &[String]) -> Command {
    let mut c = Command::new(rko_bin());
    c.args(args)
        .env("DOCKER_CONFIG", "/nonexistent-rko-test")
        .env("REGISTRY_AUTH_FILE", "/nonexistent-rko-test/auth.json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn run_target(t: &Target) {
    let out = rko_cmd(&t.args).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        t.name,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `trials` kills of `t` at random moments within its normal duration; returns the tally.
fn crash_trials(t: &Target, trials: u64, rng: &mut Rng) -> Tally {
    // The reference: an uninterrupted run, its outputs and how long it takes.
    for o in &t.outputs {
        let _ = std::fs::remove_dir_all(o);
        let _ = std::fs::remove_file(o);
    }
    let start = Instant::now();
    run_target(t);
    let took = start.elapsed();
    let want: Vec<State> = t.outputs.iter().map(|o| state(o)).collect();
    let mut tally = Tally::default();
    let span = (took.as_micros() as u64 * 11 / 10).max(1000);
    for i in 0..trials {
        tally.trials += 1;
        // Every other trial starts with no output, the others replace an existing one.
        if i % 2 == 0 {
            for o in &t.outputs {
                let _ = std::fs::remove_dir_all(o);
                let _ = std::fs::remove_file(o);
            }
        }
        let delay = Duration::from_micros(rng.below(span));
        let mut child = rko_cmd(&t.args).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_some() {
            tally.finished_first += 1;
        } else {
            child.kill().unwrap(); // SIGKILL
            tally.killed += 1;
        }
        child.wait().unwrap();
        for (o, w) in t.outputs.iter().zip(&want) {
            match state(o) {
                State::Absent => tally.absent += 1,
                s if &s == w => tally.complete += 1,
                s => {
                    tally.partial += 1;
                    say(&format!(
                        "crash-trials {}: trial {i} (killed after {delay:?}) left a partial \
                         output at {}: {s:?}",
                        t.name,
                        o.display()
                    ));
                }
            }
        }
        tally.temporaries_after_kill += temporaries(&t.out_dir) as u64;
        run_target(t);
        let got: Vec<State> = t.outputs.iter().map(|o| state(o)).collect();
        assert_eq!(got, want, "{}: the re-run after trial {i} differs", t.name);
        tally.reruns_ok += 1;
        tally.temporaries_after_rerun += temporaries(&t.out_dir) as u64;
    }
    let Tally {
        trials,
        killed,
        finished_first,
        absent,
        complete,
        partial,
        temporaries_after_kill,
        temporaries_after_rerun,
        reruns_ok,
    } = tally;
    say(&format!(
        "crash-trials {}: {trials} trials (run {took:.2?}), {killed} killed, {finished_first} \
         finished first; outputs after the kill: {absent} absent, {complete} complete, \
         {partial} partial; temporaries left by kills {temporaries_after_kill}, after re-runs \
         {temporaries_after_rerun}; re-runs ok {reruns_ok}",
        t.name
    ));
    tally
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The inputs: a binary, its layer, an image of it (for tarball and layout).
struct Inputs {
    dir: tempfile::TempDir,
}

impl Inputs {
    fn new() -> Inputs {
        let dir = tempfile::tempdir().unwrap();
        let mb = env_num("RKO_CRASH_BINARY_MB", 4);
        fake_go_binary(&dir.path().join("app"), 62, (mb << 20) as usize);
        let i = Inputs { dir };
        run_ok(Command::new(rko_bin()).args([
            "layer",
            "binary",
            "--binary",
            &s(&i.p("app")),
            "--import-path",
            "example.com/crash/app",
            "--platform",
            "linux/amd64",
            "-o",
            &s(&i.p("l.tgz")),
            "--descriptor",
            &s(&i.p("l.json")),
        ]));
        run_ok(Command::new(rko_bin()).args([
            "image",
            "--base",
            "static",
            "--platform",
            "linux/amd64",
            "--layer",
            &s(&i.p("l.json")),
            "--config-out",
            &s(&i.p("config.json")),
            "--manifest-out",
            &s(&i.p("manifest.json")),
            "--descriptor-out",
            &s(&i.p("desc.json")),
        ]));
        i
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn sources(&self) -> Vec<String> {
        [
            "--root",
            &s(&self.p("desc.json")),
            "--blob",
            &s(&self.p("config.json")),
            "--blob",
            &s(&self.p("manifest.json")),
            "--layer",
            &format!("{}={}", s(&self.p("l.json")), s(&self.p("l.tgz"))),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    }
}

fn trials() -> u64 {
    env_num("RKO_CRASH_TRIALS", 25)
}

fn rng_for(name: &str) -> Rng {
    let seed = seed();
    say(&format!(
        "crash-trials {name}: seed {seed} (RKO_CRASH_SEED={seed} draws the same kill moments)"
    ));
    Rng(seed ^ u64::from_le_bytes(*b"rkocrash") ^ (name.len() as u64 * 0x1000_0000_01b3))
}

#[test]
fn kill_during_layer_binary_leaves_complete_output_or_none() {
    let i = Inputs::new();
    let out = i.p("out");
    std::fs::create_dir(&out).unwrap();
    let t = Target {
        name: "layer",
        args: vec![
            "layer".into(),
            "binary".into(),
            "--binary".into(),
            s(&i.p("app")),
            "--import-path".into(),
            "example.com/crash/app".into(),
            "--platform".into(),
            "linux/amd64".into(),
            "-o".into(),
            s(&out.join("layer.tgz")),
            "--descriptor".into(),
            s(&out.join("layer.json")),
        ],
        outputs: vec![out.join("layer.tgz"), out.join("layer.json")],
        out_dir: out.clone(),
    };
    let tally = crash_trials(&t, trials(), &mut rng_for("layer"));
    assert_eq!(tally.partial, 0);
    assert_eq!(tally.temporaries_after_rerun, 0);
}

#[test]
fn kill_during_tarball_leaves_complete_output_or_none() {
    let i = Inputs::new();
    let out = i.p("out");
    std::fs::create_dir(&out).unwrap();
    let mut args = vec!["tarball".to_string()];
    args.extend(i.sources());
    args.extend(["-o".to_string(), s(&out.join("image.tar"))]);
    let t = Target {
        name: "tarball",
        args,
        outputs: vec![out.join("image.tar")],
        out_dir: out.clone(),
    };
    let tally = crash_trials(&t, trials(), &mut rng_for("tarball"));
    assert_eq!(tally.partial, 0);
    assert_eq!(tally.temporaries_after_rerun, 0);
}

#[test]
fn kill_during_layout_leaves_complete_output_or_none() {
    let i = Inputs::new();
    let out = i.p("out");
    std::fs::create_dir(&out).unwrap();
    let mut args = vec!["layout".to_string()];
    args.extend(i.sources());
    args.extend(["-o".to_string(), s(&out.join("layout"))]);
    let t = Target {
        name: "layout",
        args,
        outputs: vec![out.join("layout")],
        out_dir: out.clone(),
    };
    let tally = crash_trials(&t, trials(), &mut rng_for("layout"));
    assert_eq!(tally.partial, 0);
    assert_eq!(tally.temporaries_after_rerun, 0);
}

#[test]
fn kill_during_eager_pull_leaves_complete_output_or_none() {
    common::require_tools!("docker-registry");
    let reg = Registry::start(RegistryOptions::plain());
    let i = Inputs::new();
    let host = reg.host();
    let pushed = run_ok(Command::new(rko_bin()).current_dir(i.dir.path()).args([
        "build",
        "app",
        "--import-path",
        "example.com/crash/app",
        "--push",
        "--repository",
        &format!("{host}/crash"),
        "--insecure-registry",
        &host,
    ]));
    let reference = pushed.trim().to_string();
    assert!(reference.contains("@sha256:"), "{reference}");
    let out = i.p("out");
    std::fs::create_dir(&out).unwrap();
    let t = Target {
        name: "pull --eager",
        args: vec![
            "pull".into(),
            reference,
            "--eager".into(),
            "--insecure-registry".into(),
            host.clone(),
            "-o".into(),
            s(&out.join("base")),
        ],
        outputs: vec![out.join("base")],
        out_dir: out.clone(),
    };
    let tally = crash_trials(&t, trials(), &mut rng_for("pull --eager"));
    assert_eq!(tally.partial, 0);
    assert_eq!(tally.temporaries_after_rerun, 0);
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// None (after saying why) when this is not root or mounting fails.
    fn mount(size: &str) -> Option<Tmpfs> {
        let uid = run_ok(Command::new("id").arg("-u"));
        if uid.trim() != "0" {
            say(&format!(
                "skipping the disk-full test: it mounts a small tmpfs, which needs root (uid is {})",
                uid.trim()
            ));
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        if !out.status.success() {
            say(&format!(
                "skipping the disk-full test: mounting a tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        Some(Tmpfs { dir })
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Runs `args` expecting a disk-full failure for `output` inside `fs`.
fn expect_disk_full(fs: &Tmpfs, name: &str, args: &[String], output: &Path) {
    let out = rko_cmd(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    say(&format!(
        "disk-full {name}: exit {:?}: {}",
        out.status.code(),
        err.trim()
    ));
    assert_eq!(out.status.code(), Some(1), "{name}: {err}");
    assert!(
        err.contains(&s(output)),
        "{name}: the error names the output: {err}"
    );
    assert!(
        err.contains("ENOSPC"),
        "{name}: the error says ENOSPC: {err}"
    );
    assert!(!output.exists(), "{name}: no output");
    let left: Vec<_> = std::fs::read_dir(fs.path()).unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "{name}: nothing left in the full directory: {left:?}"
    );
}

#[test]
fn a_full_disk_gives_a_clear_error_and_leaves_nothing() {
    let Some(fs) = Tmpfs::mount("1m") else {
        return;
    };
    let i = Inputs::new();
    let layer = fs.path().join("layer.tgz");
    let args: Vec<String> = [
        "layer",
        "binary",
        "--binary",
        &s(&i.p("app")),
        "--import-path",
        "example.com/crash/app",
        "--platform",
        "linux/amd64",
        "-o",
        &s(&layer),
        "--descriptor",
        &s(&fs.path().join("layer.json")),
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    expect_disk_full(&fs, "layer", &args, &layer);

    let tar = fs.path().join("image.tar");
    let mut args = vec!["tarball".to_string()];
    args.extend(i.sources());
    args.extend(["-o".to_string(), s(&tar)]);
    expect_disk_full(&fs, "tarball", &args, &tar);

    let layout = fs.path().join("layout");
    let mut args = vec!["layout".to_string()];
    args.extend(i.sources());
    args.extend(["-o".to_string(), s(&layout)]);
    expect_disk_full(&fs, "layout", &args, &layout);

    let layout = fs.path().join("built");
    let args: Vec<String> = [
        "build",
        &s(&i.p("app")),
        "--import-path",
        "example.com/crash/app",
        "--layout",
        &s(&layout),
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    expect_disk_full(&fs, "build --layout", &args, &layout);

    if !common::require(&["docker-registry"]) {
        return;
    }
    let reg = Registry::start(RegistryOptions::plain());
    let host = reg.host();
    let pushed = run_ok(Command::new(rko_bin()).current_dir(i.dir.path()).args([
        "build",
        "app",
        "--import-path",
        "example.com/crash/app",
        "--push",
        "--repository",
        &format!("{host}/full"),
        "--insecure-registry",
        &host,
    ]));
    let base = fs.path().join("base");
    let args: Vec<String> = [
        "pull",
        pushed.trim(),
        "--eager",
        "--insecure-registry",
        &host,
        "-o",
        &s(&base),
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    expect_disk_full(&fs, "pull --eager", &args, &base);
}
