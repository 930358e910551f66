//! Registry credentials, found where docker and podman keep them: `$DOCKER_CONFIG/config.json`
//! (or `~/.docker/config.json`) with `credHelpers`, `auths` and `credsStore` (running
//! `docker-credential-<helper> get`), then podman's `auth.json` (`$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`).
//! Secrets are never printed: `Debug` shows only the user name.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde::Deserialize;

#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token endpoint.
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => write!(f, "IdentityToken(<redacted>)"),
        }
    }
}

#[derive(Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `docker.io` → `index.docker.io`.
fn normalize(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "docker.io" | "registry-1.docker.io" => "index.docker.io".to_string(),
        h => h.to_string(),
    }
}

/// The server URL a credential helper is asked about.
fn helper_server(registry: &str) -> String {
    if registry == "index.docker.io" {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

/// Parses a docker `config.json` or podman `auth.json`.
fn parse_config(bytes: &[u8]) -> serde_json::Result<ConfigFile> {
    serde_json::from_slice(bytes)
}

fn read_config(path: &PathBuf) -> Result<Option<ConfigFile>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(parse_config(&b).with_context(|| {
            format!("{} is not valid JSON; fix it or point DOCKER_CONFIG / REGISTRY_AUTH_FILE elsewhere", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn entry_credential(e: &AuthEntry, source: &str) -> Result<Option<Credential>> {
    if let Some(t) = e.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(t.clone())));
    }
    if let Some(a) = e.auth.as_ref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let Some((u, p)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            bail!(
                "the \"auth\" entry in {source} is not base64 of USER:PASSWORD; log in again (docker login)"
            );
        };
        return Ok(Some(Credential::Basic {
            username: u.to_string(),
            password: p.to_string(),
        }));
    }
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        return Ok(Some(Credential::Basic {
            username: u.clone(),
            password: p.clone(),
        }));
    }
    Ok(None)
}

/// Runs `docker-credential-<helper> get`.
fn run_helper(helper: &str, registry: &str) -> Result<Option<Credential>> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running the credential helper {program} (named in the docker config); install it or remove it from the config"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(helper_server(registry).as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if msg.to_lowercase().contains("not found") {
            return Ok(None);
        }
        bail!(
            "the credential helper {program} failed for {registry}: {}",
            msg.trim()
        );
    }
    #[derive(Deserialize)]
    struct HelperOut {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let h: HelperOut = serde_json::from_slice(&out.stdout).with_context(|| {
        format!("the credential helper {program} printed something that is not its JSON answer")
    })?;
    if h.username == "<token>" {
        return Ok(Some(Credential::IdentityToken(h.secret)));
    }
    Ok(Some(Credential::Basic {
        username: h.username,
        password: h.secret,
    }))
}

fn docker_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

fn podman_auth_paths() -> Vec<PathBuf> {
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return vec![PathBuf::from(f)];
    }
    let mut v = Vec::new();
    if let Some(r) = std::env::var_os("XDG_RUNTIME_DIR") {
        v.push(PathBuf::from(r).join("containers/auth.json"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        v.push(PathBuf::from(h).join(".config/containers/auth.json"));
    }
    v
}

/// Finds the credential for `registry` (`host[:port]`), if any is configured.
pub fn lookup(registry: &str) -> Result<Option<Credential>> {
    let want = normalize(registry);
    if let Some(path) = docker_config_path()
        && let Some(cfg) = read_config(&path)?
    {
        if let Some((_, helper)) = cfg.cred_helpers.iter().find(|(k, _)| normalize(k) == want)
            && let Some(c) = run_helper(helper, &want)?
        {
            return Ok(Some(c));
        }
        if let Some((_, e)) = cfg.auths.iter().find(|(k, _)| normalize(k) == want)
            && let Some(c) = entry_credential(e, &path.display().to_string())?
        {
            return Ok(Some(c));
        }
        if let Some(store) = &cfg.creds_store
            && let Some(c) = run_helper(store, &want)?
        {
            return Ok(Some(c));
        }
    }
    for path in podman_auth_paths() {
        if let Some(cfg) = read_config(&path)?
            && let Some((_, e)) = cfg.auths.iter().find(|(k, _)| normalize(k) == want)
            && let Some(c) = entry_credential(e, &path.display().to_string())?
        {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// What the fuzz target calls: parses a config file from bytes and reads every entry's
/// credential, as [`lookup`] would for a registry of each entry's name.
#[cfg(fuzzing)]
pub(crate) fn fuzz_config(bytes: &[u8]) -> usize {
    let Ok(cfg) = parse_config(bytes) else {
        return 0;
    };
    let mut found = 0;
    for (k, e) in &cfg.auths {
        let n = normalize(k);
        assert_eq!(normalize(&n), n, "normalize is idempotent for {k:?}");
        if let Ok(Some(c)) = entry_credential(e, "fuzz") {
            // A secret never shows in Debug.
            let shown = match &c {
                Credential::Basic { username, .. } => format!("Basic({username}, <redacted>)"),
                Credential::IdentityToken(_) => "IdentityToken(<redacted>)".to_string(),
            };
            assert_eq!(format!("{c:?}"), shown);
            found += 1;
        }
    }
    for k in cfg.cred_helpers.keys() {
        let _ = helper_server(&normalize(k));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalize_and_secrets_stay_hidden() {
        assert_eq!(normalize("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(normalize("http://127.0.0.1:5000"), "127.0.0.1:5000");
        let c = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = AuthEntry {
            auth: Some("dTpw".into()),
            ..Default::default()
        };
        assert_eq!(
            entry_credential(&e, "x").unwrap(),
            Some(Credential::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
    }
}
