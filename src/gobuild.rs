//! `rko build ./cmd/app`: building the Go binary from source as `ko build` does, with the
//! Go toolchain on the machine: `go list` finds the package's import path (and that it is a
//! `main` package in the current module), then `go build -trimpath` with `CGO_ENABLED=0`
//! (unless the environment sets it) and GOOS/GOARCH/GOARM from the image platform, with
//! what `.ko.yaml` adds ([`KoBuild`]: its build entry's or default env, flags and ldflags,
//! templates expanded per platform, `-toolexec` refused, as ko does; and the entry's
//! `linux_capabilities` for the binary layer).
//! The build system rules never use this: there the build system builds the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::layer::caps::FileCaps;
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

/// What `.ko.yaml` adds to a `go build` (all empty without one).
#[derive(Clone, Debug, Default)]
pub struct GoFlags {
    /// Flags before `-trimpath` (templates already expanded).
    pub flags: Vec<String>,
    /// The one `-ldflags=` value (templates expanded, joined by spaces), if any.
    pub ldflags: Option<String>,
    /// `KEY=VALUE`s set last, over the process's and the platform's.
    pub env: Vec<(String, String)>,
}

/// Splits `.ko.yaml` env entries (`KEY=VALUE`) as ko does: an entry without `=` is an
/// error.
pub fn env_pairs(entries: &[String]) -> Result<Vec<(String, String)>> {
    entries
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("invalid environment variable entry {e:?} in .ko.yaml: expected KEY=VALUE"),
        })
        .collect()
}

/// The variables `go build` for `platform` gets on top of the process's: GOOS and GOARCH,
/// GOARM or GOAMD64 from the variant, CGO_ENABLED=0 unless the process sets it, then
/// `extra` (`.ko.yaml`'s env), later entries winning.
pub fn platform_env(platform: &Platform, extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("GOOS".to_string(), platform.os.clone()),
        ("GOARCH".to_string(), platform.architecture.clone()),
    ];
    if std::env::var_os("CGO_ENABLED").is_none() {
        env.push(("CGO_ENABLED".to_string(), "0".to_string()));
    }
    match (platform.architecture.as_str(), &platform.variant) {
        ("arm", Some(v)) => env.push(("GOARM".to_string(), v.trim_start_matches('v').to_string())),
        ("amd64", Some(v)) => env.push(("GOAMD64".to_string(), v.clone())),
        _ => {}
    }
    env.extend(extra.iter().cloned());
    env
}

/// The whole environment `go build` sees, as ko's templates read it (`.Env.NAME`): the
/// process's, then [`platform_env`]; `LDFLAGS` is empty unless set, as in ko.
pub fn template_env(over: &[(String, String)]) -> std::collections::BTreeMap<String, String> {
    let mut env: std::collections::BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    env.entry("LDFLAGS".to_string()).or_default();
    env.extend(over.iter().cloned());
    env
}

/// Refuses `-toolexec` in `.ko.yaml`'s flags and in a GOFLAGS it sets, as ko refuses them:
/// a config file must not run programs of its choosing inside the compiler.
pub fn check_no_toolexec(g: &GoFlags) -> Result<()> {
    let goflags = g
        .env
        .iter()
        .filter(|(k, _)| k == "GOFLAGS")
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_string));
    for a in g.flags.iter().cloned().chain(goflags) {
        for d in ["-", "--"] {
            if a == format!("{d}toolexec") || a.starts_with(&format!("{d}toolexec=")) {
                bail!(
                    "{a} in .ko.yaml (flags or GOFLAGS): rko refuses -toolexec, as ko does; \
                     remove it from the file"
                );
            }
        }
    }
    Ok(())
}

/// The import path of a `.ko.yaml` build entry's main package, found as ko finds it:
/// `main` (a package directory, or a Go file of it) relative to `dir`, listed by `go list`
/// in that directory.
pub fn entry_import_path(go: &Path, dir: &Path, main: &str) -> Result<String> {
    let path = match dir.join(main).is_file() {
        true => Path::new(main)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ".".to_string()),
        false => main.to_string(),
    };
    let local = dir.join(&path);
    if !local.exists() {
        bail!(
            "main {main:?} (in {}): {} does not exist; expected a main package directory or \
             a Go file of one, relative to the entry's dir",
            dir.display(),
            local.display()
        );
    }
    let out = Command::new(go)
        .args(["list", "-f", "{{.ImportPath}}", "--", &format!("./{path}")])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} list", go.display()))?;
    if !out.status.success() {
        bail!(
            "main {main:?} (in {}) is not a valid local import path: `go list` says:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    match lines.as_slice() {
        [ip] => Ok(ip.to_string()),
        _ => bail!(
            "main {main:?} (in {}) names {} packages; expected exactly one",
            dir.display(),
            lines.len()
        ),
    }
}

/// Builds `package` for `platform` into `out`, as ko does (`go build <flags> -trimpath
/// [-ldflags=…] -o OUT PACKAGE`); a failed build shows go's output.
pub fn build(
    go: &Path,
    package: &str,
    platform: &Platform,
    out: &Path,
    extra: &GoFlags,
) -> Result<()> {
    let mut cmd = Command::new(go);
    cmd.arg("build").args(&extra.flags).arg("-trimpath");
    if let Some(l) = &extra.ldflags {
        cmd.arg(format!("-ldflags={l}"));
    }
    cmd.arg("-o")
        .arg(out)
        .arg("--")
        .arg(package)
        .envs(platform_env(platform, &extra.env))
        .stdin(Stdio::null());
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

/// The `.ko.yaml` settings for building one package: its build entry (matched by the
/// import path of the entry's `main`, as ko matches it; the last match wins, as in ko's
/// map) or the defaults, ready to expand per platform.
pub struct KoBuild {
    settings: crate::koconfig::Settings,
    /// The build entry's `linux_capabilities`, checked.
    pub capabilities: Option<FileCaps>,
    /// `SOURCE_DATE_EPOCH` (--created), else now: ko's `.Date` and `.Timestamp`.
    date: i64,
    /// ko's `.Git`, found when a template first asks.
    git: std::sync::OnceLock<crate::koconfig::git::GitInfo>,
    /// The Go toolchain, for ko's `.GoEnv` (`go env`, run when a template first asks).
    go: PathBuf,
    go_env: std::sync::OnceLock<Result<std::collections::BTreeMap<String, String>, String>>,
}

/// `go env`, as ko's `.GoEnv` reads it (ko parses `go env`'s lines; `-json` gives the same
/// values without shell quoting).
fn go_env(go: &Path) -> Result<std::collections::BTreeMap<String, String>, String> {
    let out = std::process::Command::new(go)
        .args(["env", "-json"])
        .output()
        .map_err(|e| format!("cannot run {} env: {e}", go.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} env -json exited with {}: {}",
            go.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{} env -json printed no JSON object of strings: {e}",
            go.display()
        )
    })
}

impl KoBuild {
    pub fn for_package(
        ko: &crate::koconfig::Loaded,
        go: &Path,
        ip: &str,
        created: Option<u64>,
    ) -> Result<Self> {
        let mut entry = None;
        let mut capabilities = None;
        if let Some(path) = &ko.path {
            let cwd = std::env::current_dir().context("reading the working directory")?;
            for (i, b) in ko.config.builds.iter().enumerate() {
                let dir = cwd.join(b.dir.as_deref().unwrap_or("."));
                let main = b.main.as_deref().unwrap_or(".");
                let found = entry_import_path(go, &dir, main).with_context(|| {
                    format!("{}:{}: builds entry {}", path.display(), b.line, b.name(i))
                })?;
                if found == ip {
                    entry = Some(i);
                }
            }
            if let Some(i) = entry {
                let b = &ko.config.builds[i];
                eprintln!("rko: using build config {} for {ip}", b.name(i));
                capabilities = FileCaps::parse(&b.linux_capabilities).with_context(|| {
                    format!(
                        "{}:{}: build {}: linux_capabilities",
                        path.display(),
                        b.line,
                        b.name(i)
                    )
                })?;
            }
        }
        let date = match created {
            Some(s) => i64::try_from(s).context("SOURCE_DATE_EPOCH is out of range")?,
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        };
        Ok(KoBuild {
            settings: ko.config.settings(entry),
            capabilities,
            date,
            git: std::sync::OnceLock::new(),
            go: go.to_path_buf(),
            go_env: std::sync::OnceLock::new(),
        })
    }

    /// The flags, ldflags and env for `platform`, templates expanded as ko expands them.
    pub fn expand(&self, platform: &Platform) -> Result<GoFlags> {
        use crate::koconfig::template::{Data, expand};
        let env = env_pairs(&self.settings.env)?;
        let template_env = template_env(&platform_env(platform, &env));
        let git = || {
            self.git
                .get_or_init(|| {
                    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                    let (info, why) = crate::koconfig::git::GitInfo::of(&cwd);
                    if let Some(why) = why {
                        eprintln!(
                            "rko: warning: no git information for {{{{.Git.*}}}} ({why}); \
                             the fields are empty, as in ko"
                        );
                    }
                    info
                })
                .clone()
        };
        // ko: `go env`, each key the build's environment also sets taking that value (so
        // GOOS and GOARCH are the platform's).
        let go_env = || {
            let mut env = self.go_env.get_or_init(|| go_env(&self.go)).clone()?;
            for (k, v) in env.iter_mut() {
                if let Some(over) = template_env.get(k) {
                    v.clone_from(over);
                }
            }
            Ok(env)
        };
        let data = Data {
            env: &template_env,
            git: &git,
            go_env: &go_env,
            date: self.date,
        };
        let each = |list: &[String], what: &str| -> Result<Vec<String>> {
            list.iter()
                .map(|t| {
                    expand(t, &data).with_context(|| format!("expanding the {what} of .ko.yaml"))
                })
                .collect()
        };
        let flags = each(&self.settings.flags, "flags")?;
        let ldflags = each(&self.settings.ldflags, "ldflags")?;
        let g = GoFlags {
            flags,
            ldflags: (!ldflags.is_empty()).then(|| ldflags.join(" ")),
            env,
        };
        check_no_toolexec(&g)?;
        Ok(g)
    }
}
