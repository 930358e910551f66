//! ko's `.ko.yaml`, as `ko build` finds and reads it: `KO_CONFIG_PATH` (a file, or a
//! directory holding `.ko.yaml`), else `.ko.yaml` (or `.ko.yml`, `.ko.json`) in the working
//! directory. Keys match case-insensitively, as viper matches them; a list-valued key also
//! takes one string (split at whitespace, as viper splits it; a build's `ldflags` stay one
//! flag, as ko's `StringArray`). A key ko does not read is warned about, not ignored
//! silently; malformed YAML and a value of the wrong shape are errors naming `FILE:LINE`.
//!
//! This module reads the file and picks the base as ko does ([`Loaded::base_for`]); what
//! the build settings mean for `go build` is `gobuild::KoBuild`'s, with the templates
//! evaluated by [`template`]. A leaf: it imports nothing else of the crate.

pub mod git;
pub mod template;
pub mod yaml;

use std::path::{Path, PathBuf};

use yaml::{Node, Value};

/// A `.ko.yaml`'s settings. An absent key is `None` or empty, as ko treats an empty list
/// as unset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KoConfig {
    pub default_base_image: Option<String>,
    /// Import path (as written) → base, in file order.
    pub base_image_overrides: Vec<(String, String)>,
    pub default_platforms: Vec<String>,
    pub default_env: Vec<String>,
    pub default_flags: Vec<String>,
    pub default_ldflags: Vec<String>,
    pub builds: Vec<BuildConfig>,
    /// The `KO_*` variables that replaced a list of the file's (see [`KoConfig::with_env`]),
    /// so a message names where a value came from.
    pub from_env: Vec<&'static str>,
}

impl KoConfig {
    /// ko's viper reads `KO_`-prefixed environment variables over the file's keys:
    /// `KO_DEFAULTPLATFORMS`, `KO_DEFAULTENV`, `KO_DEFAULTFLAGS` and `KO_DEFAULTLDFLAGS`,
    /// each split on white space as viper splits a string into a list; an empty one is
    /// unset (one of blanks only is an empty list, as in ko). `KO_DEFAULTBASEIMAGE` is read
    /// where the base is chosen.
    pub fn with_env(mut self, get: impl Fn(&str) -> Option<String>) -> KoConfig {
        for (var, list) in [
            ("KO_DEFAULTPLATFORMS", &mut self.default_platforms),
            ("KO_DEFAULTENV", &mut self.default_env),
            ("KO_DEFAULTFLAGS", &mut self.default_flags),
            ("KO_DEFAULTLDFLAGS", &mut self.default_ldflags),
        ] {
            // viper takes a set, non-empty value (even all blanks, which splits to none).
            if let Some(v) = get(var).filter(|v| !v.is_empty()) {
                *list = v.split_whitespace().map(str::to_string).collect();
                self.from_env.push(var);
            }
        }
        self
    }
}

/// One entry of `builds:` (GoReleaser's shape, as ko reads it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildConfig {
    pub id: Option<String>,
    /// The directory `main` is relative to (default `.`).
    pub dir: Option<String>,
    /// The main package, or a Go file of it (default `.`).
    pub main: Option<String>,
    pub env: Vec<String>,
    pub flags: Vec<String>,
    pub ldflags: Vec<String>,
    pub linux_capabilities: Vec<String>,
    /// The line the entry starts on, for messages.
    pub line: usize,
}

/// The env, flags and ldflags (templates not yet expanded) of one build.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    pub env: Vec<String>,
    pub flags: Vec<String>,
    pub ldflags: Vec<String>,
}

impl BuildConfig {
    /// ko's name for the entry in messages: its id, else `#N` (its index).
    pub fn name(&self, index: usize) -> String {
        self.id.clone().unwrap_or_else(|| format!("#{index}"))
    }
}

/// Why a `.ko.yaml` cannot be used; each names the file, and the line where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}:{line}:{column}: malformed YAML: {message}; fix the file (ko reads it as YAML)", path.display())]
    Yaml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}:{line}: {key}: expected {expected}, found {found}", path.display())]
    Shape {
        path: PathBuf,
        line: usize,
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{}:{line}: {key} is given twice; give each key once", path.display())]
    Duplicate {
        path: PathBuf,
        line: usize,
        key: String,
    },
    #[error("{}: {why}; expected KO_CONFIG_PATH to name a .ko.yaml file, or a directory holding one", path.display())]
    ConfigPath { path: PathBuf, why: String },
    #[error(
        "{}: ko reads TOML configs through viper, rko reads YAML only; expected .ko.yaml (the same keys, as YAML)",
        path.display()
    )]
    Toml { path: PathBuf },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The `.ko.yaml` in effect (found as ko finds it), or an empty one.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Where it was read from.
    pub path: Option<PathBuf>,
    pub config: KoConfig,
}

impl Loaded {
    /// Finds the config as ko does (`KO_CONFIG_PATH`, else the working directory) and reads
    /// it; each unknown key is warned about on stderr, naming the file and line.
    pub fn from_env() -> anyhow::Result<Loaded> {
        use anyhow::Context;
        let cwd = std::env::current_dir().context("reading the working directory")?;
        let from_env = std::env::var_os("KO_CONFIG_PATH").map(PathBuf::from);
        let Some(path) = find(from_env.as_deref(), &cwd)? else {
            return Ok(Loaded {
                path: None,
                config: KoConfig::default().with_env(|k| std::env::var(k).ok()),
            });
        };
        let (config, warnings) = load(&path)?;
        for w in warnings {
            eprintln!(
                "rko: warning: {}:{}: unknown key {:?} in the ko config, ignored (ko ignores \
                 it too); expected one of defaultBaseImage, baseImageOverrides, \
                 defaultPlatforms, defaultEnv, defaultFlags, defaultLdflags, builds (id, dir, \
                 main, env, flags, ldflags, linux_capabilities)",
                path.display(),
                w.line,
                w.key
            );
        }
        Ok(Loaded {
            path: Some(path),
            config: config.with_env(|k| std::env::var(k).ok()),
        })
    }

    /// The base for `import_path` when no `--base` is given, as ko picks it: the file's
    /// baseImageOverrides for the import path, else `$KO_DEFAULTBASEIMAGE` (viper's `KO_`
    /// environment over the file), else defaultBaseImage, else rko's built-in `static`.
    pub fn base_for(&self, import_path: &str) -> String {
        let env = std::env::var("KO_DEFAULTBASEIMAGE")
            .ok()
            .filter(|v| !v.is_empty());
        self.config
            .base_override(import_path)
            .map(str::to_string)
            .or(env)
            .or_else(|| self.config.default_base_image.clone())
            .unwrap_or_else(|| "static".to_string())
    }

    /// Where the list `key` (`defaultPlatforms`, …) came from, for a message: `$KO_…`, or
    /// the file and key.
    pub fn source_of(&self, key: &str) -> String {
        let var = format!("KO_{}", key.to_uppercase());
        match self.config.from_env.iter().any(|v| *v == var) {
            true => format!("${var}"),
            false => format!("{}: {key}", self.display()),
        }
    }

    /// What to warn when a prebuilt `binary` is given: the file's build settings (and any
    /// linux_capabilities) cannot apply to it, only its base settings do.
    pub fn unused_for_binary(&self, binary: &Path) -> Option<String> {
        let c = &self.config;
        let path = self.path.as_ref()?;
        let settings = !c.builds.is_empty()
            || !c.default_env.is_empty()
            || !c.default_flags.is_empty()
            || !c.default_ldflags.is_empty()
            || !c.default_platforms.is_empty();
        if !settings {
            return None;
        }
        let caps = match c.builds.iter().any(|b| !b.linux_capabilities.is_empty()) {
            true => " (nor its linux_capabilities: give them with --linux-capability)",
            false => "",
        };
        Some(format!(
            "{} is a binary, built already, so {}'s builds, defaultEnv, defaultFlags, \
             defaultLdflags and defaultPlatforms do not apply to it{caps}; only its base \
             settings do. Pass the package (./cmd/app) to build it with them",
            binary.display(),
            path.display()
        ))
    }

    /// The file's name for messages.
    pub fn display(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| ".ko.yaml".to_string(), |p| p.display().to_string())
    }
}

/// A key rko does not know, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub key: String,
}

/// Where ko looks for its config, in its order; `Ok(None)` when there is none.
/// `KO_CONFIG_PATH` must exist when set (ko fails too); without it, the working
/// directory's `.ko.json`, `.ko.yaml` or `.ko.yml` (viper's order; JSON reads as YAML).
pub fn find(config_path: Option<&Path>, cwd: &Path) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(p) = config_path.filter(|p| !p.as_os_str().is_empty()) {
        let err = |why: String| ConfigError::ConfigPath {
            path: p.to_path_buf(),
            why,
        };
        let meta = std::fs::metadata(p).map_err(|e| err(format!("KO_CONFIG_PATH: {e}")))?;
        if meta.is_file() {
            return Ok(Some(p.to_path_buf()));
        }
        if meta.is_dir() {
            let file = p.join(".ko.yaml");
            return match std::fs::metadata(&file) {
                Ok(m) if m.is_file() => Ok(Some(file)),
                Ok(_) => Err(err(format!("{} is not a regular file", file.display()))),
                Err(e) => Err(err(format!(
                    "KO_CONFIG_PATH is a directory, but {}: {e}",
                    file.display()
                ))),
            };
        }
        return Err(err("not a regular file or a directory".to_string()));
    }
    for name in [".ko.json", ".ko.toml", ".ko.yaml", ".ko.yml"] {
        let file = cwd.join(name);
        if file.is_file() {
            if name == ".ko.toml" {
                return Err(ConfigError::Toml { path: file });
            }
            return Ok(Some(file));
        }
    }
    Ok(None)
}

/// Reads and parses the file `path`.
pub fn load(path: &Path) -> Result<(KoConfig, Vec<Warning>), ConfigError> {
    if path.extension().is_some_and(|e| e == "toml") {
        return Err(ConfigError::Toml {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Scalar(None) => "null",
        Value::Scalar(Some(_)) => "a string",
        Value::Seq(_) => "a list",
        Value::Map(_) => "a mapping",
    }
}

/// A parse of one file: the path for messages, the warnings gathered.
struct Reader<'a> {
    path: &'a Path,
    warnings: Vec<Warning>,
}

/// How a one-string value becomes a list.
#[derive(Clone, Copy)]
enum OneString {
    /// viper's `GetStringSlice` and ko's `FlagArray`: split at whitespace.
    Fields,
    /// ko's `StringArray`, and a weakly typed `[]string`: the one string.
    Whole,
}

impl Reader<'_> {
    fn shape(&self, n: &Node, key: &str, expected: &'static str) -> ConfigError {
        ConfigError::Shape {
            path: self.path.to_path_buf(),
            line: n.line,
            key: key.to_string(),
            expected,
            found: kind(&n.value),
        }
    }

    fn string(&self, n: &Node, key: &str) -> Result<Option<String>, ConfigError> {
        match &n.value {
            Value::Scalar(s) => Ok(s.clone()),
            _ => Err(self.shape(n, key, "a string")),
        }
    }

    fn strings(&self, n: &Node, key: &str, one: OneString) -> Result<Vec<String>, ConfigError> {
        match &n.value {
            Value::Scalar(None) => Ok(Vec::new()),
            Value::Scalar(Some(s)) => Ok(match one {
                OneString::Fields => s.split_whitespace().map(str::to_string).collect(),
                OneString::Whole => vec![s.clone()],
            }),
            Value::Seq(items) => items
                .iter()
                .map(|i| match &i.value {
                    Value::Scalar(Some(s)) => Ok(s.clone()),
                    _ => Err(self.shape(i, &format!("{key}[]"), "a string")),
                })
                .collect(),
            Value::Map(_) => Err(self.shape(n, key, "a list of strings")),
        }
    }

    /// The pairs of a mapping whose keys are strings, duplicates refused (as yaml.v3
    /// refuses them).
    fn pairs<'n>(&self, n: &'n Node, key: &str) -> Result<Vec<(String, &'n Node)>, ConfigError> {
        let Value::Map(pairs) = &n.value else {
            return Err(self.shape(n, key, "a mapping"));
        };
        let mut out: Vec<(String, &Node)> = Vec::new();
        for (k, v) in pairs {
            let Value::Scalar(Some(name)) = &k.value else {
                return Err(self.shape(k, &format!("a key of {key}"), "a string"));
            };
            if out.iter().any(|(seen, _)| seen.eq_ignore_ascii_case(name)) {
                return Err(ConfigError::Duplicate {
                    path: self.path.to_path_buf(),
                    line: k.line,
                    key: name.clone(),
                });
            }
            out.push((name.clone(), v));
        }
        Ok(out)
    }

    fn build(&mut self, n: &Node, i: usize) -> Result<BuildConfig, ConfigError> {
        let mut b = BuildConfig {
            line: n.line,
            ..Default::default()
        };
        for (key, v) in self.pairs(n, &format!("builds[{i}]"))? {
            let at = format!("builds[{i}].{key}");
            match key.to_ascii_lowercase().as_str() {
                "id" => b.id = self.string(v, &at)?,
                "dir" => b.dir = self.string(v, &at)?,
                "main" => b.main = self.string(v, &at)?,
                "env" => b.env = self.strings(v, &at, OneString::Whole)?,
                "flags" => b.flags = self.strings(v, &at, OneString::Fields)?,
                "ldflags" => b.ldflags = self.strings(v, &at, OneString::Whole)?,
                "linux_capabilities" => {
                    b.linux_capabilities = self.strings(v, &at, OneString::Fields)?
                }
                _ => self.warnings.push(Warning {
                    line: v.line,
                    key: at,
                }),
            }
        }
        Ok(b)
    }
}

/// Parses the text of a `.ko.yaml`; `path` names it in messages.
pub fn parse(text: &str, path: &Path) -> Result<(KoConfig, Vec<Warning>), ConfigError> {
    let root = yaml::parse(text).map_err(|e| ConfigError::Yaml {
        path: path.to_path_buf(),
        line: e.line,
        column: e.column,
        message: e.message,
    })?;
    let mut r = Reader {
        path,
        warnings: Vec::new(),
    };
    let mut c = KoConfig::default();
    if root.value == Value::Scalar(None) {
        return Ok((c, r.warnings));
    }
    for (key, v) in r.pairs(&root, "the file")? {
        match key.to_ascii_lowercase().as_str() {
            "defaultbaseimage" => c.default_base_image = r.string(v, &key)?,
            "defaultplatforms" => c.default_platforms = r.strings(v, &key, OneString::Fields)?,
            "defaultenv" => c.default_env = r.strings(v, &key, OneString::Fields)?,
            "defaultflags" => c.default_flags = r.strings(v, &key, OneString::Fields)?,
            "defaultldflags" => c.default_ldflags = r.strings(v, &key, OneString::Fields)?,
            "baseimageoverrides" => {
                if v.value != Value::Scalar(None) {
                    for (ip, base) in r.pairs(v, &key)? {
                        let at = format!("{key}.{ip}");
                        if let Some(b) = r.string(base, &at)? {
                            c.base_image_overrides.push((ip, b));
                        }
                    }
                }
            }
            "builds" => match &v.value {
                Value::Scalar(None) => {}
                Value::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let b = r.build(item, i)?;
                        c.builds.push(b);
                    }
                }
                _ => return Err(r.shape(v, &key, "a list of build entries")),
            },
            _ => r.warnings.push(Warning {
                line: v.line,
                key: key.clone(),
            }),
        }
    }
    Ok((c, r.warnings))
}

impl KoConfig {
    /// The base `baseImageOverrides` names for `import_path`, matched case-insensitively
    /// (viper lowercases keys, and ko lowercases the import path to match); an empty value
    /// is no override, as in ko.
    pub fn base_override(&self, import_path: &str) -> Option<&str> {
        let ip = import_path.to_lowercase();
        self.base_image_overrides
            .iter()
            .rev()
            .find(|(k, v)| k.to_lowercase() == ip && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// What building with the entry `entry` (an index into `builds`, or none) takes, as
    /// ko merges it: the entry's env, flags and ldflags, each falling back to its default
    /// when the entry leaves it empty.
    pub fn settings(&self, entry: Option<usize>) -> Settings {
        let b = entry.and_then(|i| self.builds.get(i));
        let pick = |own: Option<&Vec<String>>, default: &[String]| -> Vec<String> {
            match own.filter(|v| !v.is_empty()) {
                Some(v) => v.clone(),
                None => default.to_vec(),
            }
        };
        Settings {
            env: pick(b.map(|b| &b.env), &self.default_env),
            flags: pick(b.map(|b| &b.flags), &self.default_flags),
            ldflags: pick(b.map(|b| &b.ldflags), &self.default_ldflags),
        }
    }

    /// The config as YAML with the canonical key names, every string double-quoted; reads
    /// back as the same value (less the build entries' lines).
    #[cfg(any(test, fuzzing))]
    pub fn to_yaml(&self) -> String {
        use yaml::quote;
        let list = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| quote(s)).collect();
            format!("[{}]", items.join(", "))
        };
        let mut out = String::new();
        if let Some(b) = &self.default_base_image {
            out.push_str(&format!("defaultBaseImage: {}\n", quote(b)));
        }
        if !self.base_image_overrides.is_empty() {
            out.push_str("baseImageOverrides:\n");
            // Explicit keys (`? k`): an implicit key is limited to 1024 characters.
            for (k, v) in &self.base_image_overrides {
                out.push_str(&format!("  ? {}\n  : {}\n", quote(k), quote(v)));
            }
        }
        for (key, v) in [
            ("defaultPlatforms", &self.default_platforms),
            ("defaultEnv", &self.default_env),
            ("defaultFlags", &self.default_flags),
            ("defaultLdflags", &self.default_ldflags),
        ] {
            if !v.is_empty() {
                out.push_str(&format!("{key}: {}\n", list(v)));
            }
        }
        if !self.builds.is_empty() {
            out.push_str("builds:\n");
            for b in &self.builds {
                out.push_str("- {");
                let mut fields = Vec::new();
                for (k, v) in [("id", &b.id), ("dir", &b.dir), ("main", &b.main)] {
                    if let Some(v) = v {
                        fields.push(format!("{k}: {}", quote(v)));
                    }
                }
                for (k, v) in [
                    ("env", &b.env),
                    ("flags", &b.flags),
                    ("ldflags", &b.ldflags),
                    ("linux_capabilities", &b.linux_capabilities),
                ] {
                    fields.push(format!("{k}: {}", list(v)));
                }
                out.push_str(&fields.join(", "));
                out.push_str("}\n");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ko_environment_is_over_the_files_lists() {
        let file = KoConfig {
            default_platforms: vec!["linux/arm64".into()],
            default_flags: vec!["-tags=file".into()],
            default_ldflags: vec!["-s".into()],
            ..KoConfig::default()
        };
        let env = |k: &str| match k {
            "KO_DEFAULTPLATFORMS" => Some(" linux/amd64\tlinux/arm/v7 ".to_string()),
            "KO_DEFAULTENV" => Some("A=1 B=2".to_string()),
            "KO_DEFAULTLDFLAGS" => Some("".to_string()),
            "KO_DEFAULTFLAGS" => Some(" ".to_string()),
            _ => None,
        };
        let c = file.with_env(env);
        assert_eq!(c.default_platforms, ["linux/amd64", "linux/arm/v7"]);
        assert_eq!(c.default_env, ["A=1", "B=2"]);
        // Empty: the file's stay; blanks only: none, as viper gives ko.
        assert!(c.default_flags.is_empty());
        assert_eq!(c.default_ldflags, ["-s"]);
    }

    fn p(text: &str) -> (KoConfig, Vec<Warning>) {
        parse(text, Path::new(".ko.yaml")).unwrap()
    }

    fn err(text: &str) -> String {
        parse(text, Path::new("dir/.ko.yaml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn reads_ko_keys_case_insensitively_and_one_string_lists() {
        let (c, w) = p("defaultBaseImage: cgr.dev/x/static\n\
             DEFAULTPLATFORMS: linux/amd64 linux/arm64\n\
             defaultLdflags: -s -w\n\
             defaultEnv: [A=1, 'B=2 3']\n\
             baseImageOverrides:\n  Example.com/App: reg.io/base\n\
             builds:\n\
             - id: app\n  main: ./cmd/app\n  ldflags: -X main.v=1 -s\n  flags: -tags netgo\n  \
             env: CGO_ENABLED=1\n  linux_capabilities: cap_net_bind_service\n");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.default_base_image.as_deref(), Some("cgr.dev/x/static"));
        assert_eq!(c.default_platforms, ["linux/amd64", "linux/arm64"]);
        assert_eq!(c.default_ldflags, ["-s", "-w"]);
        assert_eq!(c.default_env, ["A=1", "B=2 3"]);
        assert_eq!(c.base_override("example.com/app"), Some("reg.io/base"));
        let b = &c.builds[0];
        assert_eq!(b.ldflags, ["-X main.v=1 -s"]);
        assert_eq!(b.flags, ["-tags", "netgo"]);
        assert_eq!(b.env, ["CGO_ENABLED=1"]);
        assert_eq!(b.linux_capabilities, ["cap_net_bind_service"]);
        assert_eq!(b.line, 8);
    }

    #[test]
    fn unknown_keys_are_warnings_with_lines() {
        let (_, w) = p("defaultBaseImage: x\nnope: 1\nbuilds:\n- main: .\n  goos: [linux]\n");
        assert_eq!(
            w,
            [
                Warning {
                    line: 2,
                    key: "nope".into()
                },
                Warning {
                    line: 5,
                    key: "builds[0].goos".into()
                }
            ]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = err("defaultBaseImage: x\nbuilds:\n  - main: [\n");
        assert!(e.starts_with("dir/.ko.yaml:"), "{e}");
        assert!(e.contains("malformed YAML"), "{e}");
        let e = err("defaultBaseImage: x\ndefaultPlatforms: {a: b}\n");
        assert_eq!(
            e,
            "dir/.ko.yaml:2: defaultPlatforms: expected a list of strings, found a mapping"
        );
        let e = err("builds:\n- main: .\n  ldflags: [[x]]\n");
        assert_eq!(
            e,
            "dir/.ko.yaml:3: builds[0].ldflags[]: expected a string, found a list"
        );
        let e = err("a: 1\nA: 2\n");
        assert_eq!(e, "dir/.ko.yaml:2: A is given twice; give each key once");
        let e = err("- a\n");
        assert!(
            e.contains("the file: expected a mapping, found a list"),
            "{e}"
        );
    }

    #[test]
    fn prints_what_reads_back() {
        let (c, _) = p(
            "defaultBaseImage: \"a\\u0001\"\nbaseImageOverrides: {x: y}\n\
             defaultFlags: [-v]\nbuilds:\n- {id: i, main: '#x', ldflags: [], env: [A=B]}\n",
        );
        let mut c = c;
        // Longer than YAML's 1024-character implicit keys once escaped (found by fuzzing).
        let long = format!("{}\u{10}", "k".repeat(1100));
        c.base_image_overrides.push((long, "z".to_string()));
        let (back, w) = p(&c.to_yaml());
        assert!(w.is_empty());
        let strip = |mut c: KoConfig| {
            c.builds.iter_mut().for_each(|b| b.line = 0);
            c
        };
        assert_eq!(strip(back), strip(c));
    }

    #[test]
    fn empty_file_is_an_empty_config() {
        assert_eq!(p("").0, KoConfig::default());
        assert_eq!(p("# only a comment\n").0, KoConfig::default());
    }
}
