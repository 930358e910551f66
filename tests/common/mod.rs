//! Helpers shared by the integration tests: running `rko` and other commands with their
//! output in the panic message, building small Go programs, reading JSON, isolated
//! Docker/Podman state, and the tool requirement that skips (or, under
//! `RKO_TEST_REQUIRE_TOOLS=1`, fails) a test whose external tools are missing
//! (`require.rs`). Each test crate uses only some of them.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use tempfile::TempDir;

/// The `rko` binary under test.
pub const RKO: &str = env!("CARGO_BIN_EXE_rko");

/// A `Command` for `rko` with the given arguments.
pub fn rko<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(RKO);
    cmd.args(args);
    cmd
}

/// Runs `rko` with `args`, asserts success and returns its trimmed stdout.
pub fn rko_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_ok(&mut rko(args)).trim().to_string()
}

/// Runs `rko` with `args`, asserts failure and returns its stderr.
pub fn rko_fail<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_fail(&mut rko(args))
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` and returns its output; panics if the program cannot be started (e.g. a
/// missing tool).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{}` (is `{}` installed?): {e}",
            describe(cmd),
            cmd.get_program().to_string_lossy()
        )
    })
}

fn report(cmd: &Command, out: &Output) -> String {
    format!(
        "`{}` exited with {}\n--- stdout\n{}\n--- stderr\n{}",
        describe(cmd),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd`, asserts that it succeeds and returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{}", report(cmd, &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd`, asserts that it fails and returns its stderr.
pub fn run_fail(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        !out.status.success(),
        "expected failure but {}",
        report(cmd, &out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The Go build cache shared by all test runs (kept under the system temp directory).
pub fn go_cache() -> PathBuf {
    std::env::temp_dir().join("rko-test-gocache")
}

/// Builds the single-file Go program `main_go` (module `example.com/x`, standard library
/// only) as a static binary for linux/`goarch`, at `dir/name`. Returns the binary's path.
pub fn go_build(dir: &Path, name: &str, main_go: &str, goarch: &str) -> PathBuf {
    go_build_for(dir, name, main_go, "linux", goarch)
}

/// [`go_build`] for `goos`/`goarch` (windows: a PE file).
pub fn go_build_for(dir: &Path, name: &str, main_go: &str, goos: &str, goarch: &str) -> PathBuf {
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("go.mod"), "module example.com/x\n\ngo 1.19\n").unwrap();
    std::fs::write(src.join("main.go"), main_go).unwrap();
    let out = dir.join(name);
    run_ok(
        Command::new("go")
            .args(["build", "-trimpath", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(&src)
            .env("CGO_ENABLED", "0")
            .env("GOOS", goos)
            .env("GOARCH", goarch)
            .env("GOCACHE", go_cache())
            .env("GO111MODULE", "on")
            .env("GOPROXY", "off")
            .env("GOFLAGS", ""),
    );
    out
}

/// Reads a JSON file.
pub fn read_json(path: impl AsRef<Path>) -> serde_json::Value {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Parses a command's JSON output.
pub fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// Path of the blob `digest` (`sha256:…`) in the OCI layout `layout`.
pub fn layout_blob(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    layout.join("blobs/sha256").join(hex)
}

/// A lowercase image reference unique to this process and call, `rko-test/<name>:<tag>`,
/// valid for Docker and Podman.
pub fn unique_ref(name: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "rko-test/{}:p{}-{}-{nanos}",
        name.to_ascii_lowercase().replace('_', "-"),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// An image loaded into the Docker Engine with `docker load`, removed (`docker rmi`) on
/// drop, also when the test fails.
pub struct DockerImage {
    pub reference: String,
}

impl DockerImage {
    /// `docker load -i tarball`; asserts that `reference` was loaded.
    pub fn load(tarball: &Path, reference: &str) -> Self {
        let image = DockerImage {
            reference: reference.to_string(),
        };
        let out = run_ok(Command::new("docker").arg("load").arg("-i").arg(tarball));
        assert!(
            out.contains(&format!("Loaded image: {reference}")),
            "docker load did not load {reference}:\n{out}"
        );
        image
    }

    /// `docker run --rm --network none IMAGE ARGS…`; returns stdout.
    pub fn run(&self, args: &[&str]) -> String {
        run_ok(
            Command::new("docker")
                .args(["run", "--rm", "--network", "none", &self.reference])
                .args(args),
        )
    }

    /// `docker image inspect --format FORMAT IMAGE`; returns the trimmed output.
    pub fn inspect(&self, format: &str) -> String {
        run_ok(Command::new("docker").args([
            "image",
            "inspect",
            "--format",
            format,
            &self.reference,
        ]))
        .trim()
        .to_string()
    }
}

impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", &self.reference])
            .output();
    }
}

/// Podman with its own configuration and storage (vfs, no network, runc, cgroupfs) in a
/// temporary directory, deleted on drop.
pub struct Podman {
    dir: TempDir,
}

impl Podman {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rko-podman-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("containers.conf"),
            format!(
                "[containers]\n\
                 default_ulimits = [\"nofile=20000:20000\", \"nproc=20000:20000\"]\n\
                 netns = \"none\"\n\
                 \n\
                 [engine]\n\
                 runtime = \"runc\"\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\n\
                 tmp_dir = \"{}\"\n",
                d.join("tmp").display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                d.join("root").display(),
                d.join("run").display()
            ),
        )
        .unwrap();
        Podman { dir }
    }

    /// A `podman` command using this environment.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .env(
                "CONTAINERS_STORAGE_CONF",
                self.dir.path().join("storage.conf"),
            );
        cmd
    }

    /// The environment that points podman at this configuration, for programs that run it.
    pub fn env(&self) -> [(&'static str, PathBuf); 2] {
        [
            ("CONTAINERS_CONF", self.dir.path().join("containers.conf")),
            (
                "CONTAINERS_STORAGE_CONF",
                self.dir.path().join("storage.conf"),
            ),
        ]
    }

    /// Runs `podman ARGS…`, asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        run_ok(self.cmd().args(args))
    }
}

impl Default for Podman {
    fn default() -> Self {
        Self::new()
    }
}

/// A synthetic Go executable, the same bytes on every run: an ELF header for `elf_machine`
/// (62 = x86-64, 183 = arm64), Go's build info magic at a 16-byte boundary, and `size`
/// bytes in all of varied, partly compressible content. For tests that pin digests, which a
/// real `go build` (whose output changes with the Go version) cannot.
pub fn fake_go_binary(path: &Path, elf_machine: u8, size: usize) {
    let mut b = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0".to_vec();
    b.extend_from_slice(&[elf_machine, 0]);
    b.resize(4096, 0);
    b.extend_from_slice(b"\xff Go buildinf:\x08\x02");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while b.len() < size {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v = (x >> 33) as u8;
        b.push(if v < 160 {
            b"movq %rax, (%rbx)\n"[(v % 18) as usize]
        } else {
            v
        });
    }
    std::fs::write(path, b).unwrap();
}
pub mod bazel;
pub mod buildgrid;
pub mod gomod;
pub mod grpc_stub;
pub mod registry;
pub mod require;
pub mod resolve;
pub mod scratch;
pub mod tinyproxy;

#[allow(unused_imports)]
pub use require::require;
#[allow(unused_imports)]
pub(crate) use require::require_tools;

/// The lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// tests/e2e/ws/e2e.bzl pointing the e2e workspace at `registry` (and its base), with
/// `mirror` as the registry //base:e2e_mirrored and @e2e_base_mirrored pull through first.
pub fn e2e_bzl(registry: &str, mirror: &str, base_digest: &str) -> String {
    format!(
        "E2E_REGISTRY = \"{registry}\"\nE2E_MIRROR = \"{mirror}\"\nE2E_BASE_DIGEST = \"{base_digest}\"\n"
    )
}

/// Bad configurations of tests/e2e/ws/bad and the message both the Bazel and the Buck2
/// rules give for each (after the rule and target they name): (target, rule, message).
pub const BAD_CONFIGURATION: &[(&str, &str, &str)] = &[
    (
        "//bad/missing_importpath:image",
        "ko_image",
        "attribute 'importpath': expected the Go import path of the binary's main package (e.g. \"example.com/app/cmd/foo\"), found nothing. ko names the image and the /ko-app/<name> path from it; set importpath",
    ),
    (
        "//bad/base_without_digest:image",
        "ko_base",
        "attribute 'digest': expected the base pinned by digest: digest = \"sha256:...\" or image = \"HOST/REPO@sha256:...\", found \"127.0.0.1:5000/base:latest\" with no digest",
    ),
    (
        "//bad/base_bad_mirror:image",
        "ko_base",
        "attribute 'mirrors': expected HOST=MIRROR entries (e.g. \"docker.io=mirror.example.com\", HOST[:PORT][/PATH] without a scheme), found \"127.0.0.1:5001\". Pulls of HOST try each MIRROR first, in the order given, then HOST itself",
    ),
    (
        "//bad/binary_many_files:image",
        "ko_image",
        "attribute 'binary': expected one Go executable (a go_binary target), found 2 files",
    ),
    (
        "//bad/unknown_platform:index",
        "ko_image_index",
        "ko_image_index: attribute 'platforms': expected one of linux/386, linux/amd64, linux/arm/v7, linux/arm64, linux/ppc64le, linux/riscv64, linux/s390x, windows/amd64, windows/arm64, found \"linux/mips\"",
    ),
    (
        "//bad/kodata_outside:image",
        "ko_image",
        "attribute 'kodata': expected files under bad/kodata_outside/kodata/ (the image path is the part below it), found \"bad/kodata_outside/other/kodata/greeting.txt\". Move the file, or set kodata_strip_prefix",
    ),
    (
        "//bad/sbom_format:image",
        "ko_image",
        "attribute 'sbom': expected one of \"both\", \"cyclonedx\", \"none\", \"spdx\", found \"syft\"",
    ),
];

/// `rko build` of tests/e2e/ws's //analysis:subject (zstd, env, label, user, one kodata
/// file, one extra layer from analysis/extra.tar) from `binary`, with `analysis` the
/// package's directory: the digest both build systems' rules must reach.
pub fn rko_build_analysis_subject(binary: &Path, analysis: &Path) -> String {
    rko_ok([
        "build",
        binary.to_str().unwrap(),
        "--import-path",
        "example.com/e2e/cmd/bar",
        "--kodata",
        analysis.join("kodata").to_str().unwrap(),
        "--layer",
        analysis.join("extra.tar").to_str().unwrap(),
        "--compression",
        "zstd",
        "--env",
        "A=1",
        "--env",
        "B=2",
        "--label",
        "team=e2e",
        "--user",
        "1000",
        "--linux-capability",
        "net_bind_service=ep",
    ])
}

/// The os/arch of each entry of an OCI index, in order.
pub fn index_platforms(index: &serde_json::Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect()
}

/// The entrypoint of ko's debug image for the app at `app`: `dlv exec` with ko's flags.
pub fn delve_entrypoint(app: &str) -> serde_json::Value {
    serde_json::json!([
        "/ko-app/dlv",
        "exec",
        "--listen=:40000",
        "--headless",
        "--log",
        "--accept-multiclient",
        "--api-version=2",
        "--",
        app
    ])
}

/// Writes `files` (path relative to `root`, contents) below `root`, making directories.
pub fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}
