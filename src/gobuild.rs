//! `rko build ./cmd/app`: building the Go binary from source as `ko build` does, with the
//! Go toolchain on the machine: `go list` finds the package's import path (and that it is a
//! `main` package in the current module), then `go build -trimpath` with `CGO_ENABLED=0`
//! (unless the environment sets it) and GOOS/GOARCH/GOARM from the image platform.
//! The build system rules never use this: there the build system builds the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::oci::Platform;

/// What a positional `rko build` argument names.
pub enum Target {
    /// A file: the Go binary itself.
    Binary(PathBuf),
    /// A Go package to build: `./cmd/app`, `ko://example.com/m/cmd/app`, or an import path.
    Package(String),
}

impl Target {
    /// A path to an existing file is a binary; anything else is a package (`ko://` dropped).
    pub fn of(arg: &Path) -> Target {
        if arg.is_file() {
            return Target::Binary(arg.to_path_buf());
        }
        let s = arg.to_string_lossy();
        Target::Package(crate::importpath::strip_scheme(&s).to_string())
    }
}

/// The Go toolchain: `--go PATH`, else the first `go` on PATH.
pub fn go_tool(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(g) = given {
        if g.is_file() {
            return Ok(g.to_path_buf());
        }
        bail!(
            "--go {}: no such file; expected the path of a `go` executable",
            g.display()
        );
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("go"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "building from source needs the Go toolchain, but no `go` is on PATH; install \
                 Go (Debian: apt install golang-go), pass --go PATH, or build the binary \
                 yourself and pass its path instead of the package"
            )
        })
}

/// The package's import path and directory, checked to be a `main` package: `go list` in
/// the current directory, so a relative path or an import path resolves in the current
/// module.
pub fn main_package(go: &Path, package: &str) -> Result<(String, PathBuf)> {
    let out = Command::new(go)
        .args([
            "list",
            "-f",
            "{{.Name}} {{.ImportPath}} {{.Dir}}",
            "--",
            package,
        ])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} list", go.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "{package:?} is not a Go package rko can build here: `go list` says:\n{}\nexpected \
             a main package of the module in the current directory (./cmd/app, or its import \
             path), or the path of a Go binary",
            stderr.trim_end()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let [line] = lines.as_slice() else {
        bail!(
            "{package:?} names {} packages; expected one main package (not a pattern like ./...)",
            lines.len()
        );
    };
    let mut parts = line.splitn(3, ' ');
    let (name, ip, dir) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    if name != "main" {
        bail!(
            "{package:?} is package {name} ({ip}), not a main package: only a main package \
             builds a binary; name the directory of your command, e.g. ./cmd/app"
        );
    }
    Ok((ip.to_string(), PathBuf::from(dir)))
}

/// Builds `package` for `platform` into `out`, as ko does; a failed build shows go's
/// output.
pub fn build(go: &Path, package: &str, platform: &Platform, out: &Path) -> Result<()> {
    let mut cmd = Command::new(go);
    cmd.args(["build", "-trimpath", "-o"])
        .arg(out)
        .arg("--")
        .arg(package)
        .env("GOOS", &platform.os)
        .env("GOARCH", &platform.architecture)
        .stdin(Stdio::null());
    if std::env::var_os("CGO_ENABLED").is_none() {
        cmd.env("CGO_ENABLED", "0");
    }
    match (platform.architecture.as_str(), &platform.variant) {
        ("arm", Some(v)) => {
            cmd.env("GOARM", v.trim_start_matches('v'));
        }
        ("amd64", Some(v)) => {
            cmd.env("GOAMD64", v);
        }
        _ => {}
    }
    let o = cmd
        .output()
        .with_context(|| format!("running {} build", go.display()))?;
    if !o.status.success() {
        bail!(
            "go build of {package} for {platform} failed:\n{}",
            String::from_utf8_lossy(&o.stderr).trim_end()
        );
    }
    Ok(())
}
