//! Secrets stay secret: registry flows with basic auth and with token auth (pushes, shallow
//! and eager pulls, a build whose shallow base's layers come from the registry, and the
//! failures: no credentials, a wrong password, a refused token) and a Bazel push with
//! credentials. Every stdout and stderr, every output file (tarballs, layouts, push
//! manifests, `--image-refs` JSON) and Bazel's execution log is searched for the test
//! passwords, their base64 `user:password` forms, bearer tokens (JWTs start `eyJ`) and
//! Authorization headers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use common::bazel::{self, Workspace};
use common::registry::{Registry, RegistryOptions, TokenServer};
use common::{RKO, fake_go_binary};

/// What must never be written anywhere: the password, `user:password` and its base64, and
/// an Authorization header. Matched as written (binary outputs hold every short string in
/// some case).
fn secrets(user: &str, pass: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    vec![
        pass.to_string(),
        format!("{user}:{pass}"),
        b64,
        "Authorization: Basic".to_string(),
        "authorization: Basic".to_string(),
        "Authorization: Bearer".to_string(),
        "authorization: Bearer".to_string(),
    ]
}

/// A token of `tokens` for `user`, asked for as rko would; its first two parts (header and
/// claims up to the per-token fields) are what every token the server issues starts with.
fn token_of(tokens: &TokenServer, user: &str, pass: &str) -> String {
    let realm = tokens.registry_options().token.unwrap().realm;
    let addr = realm
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    let target = format!(
        "/token?service={}&scope=repository:secret:pull",
        TokenServer::SERVICE
    );
    let auth = common::registry::basic_auth(user, pass);
    let r = common::registry::http_request(addr, "GET", &target, &[("Authorization", &auth)], b"")
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let token = v["token"].as_str().or(v["access_token"].as_str()).unwrap();
    token.to_string()
}

/// Panics if the file `f` holds any of `secrets`. A program (the rko binary in runfiles)
/// holds the header names in its code, so only the secret values are looked for there.
fn assert_file_clean(f: &Path, secrets: &[String]) {
    let bytes = std::fs::read(f).unwrap_or_default();
    let values: Vec<String> = match bytes.starts_with(b"\x7fELF") {
        true => secrets
            .iter()
            .filter(|s| !s.to_lowercase().starts_with("authorization:"))
            .cloned()
            .collect(),
        false => secrets.to_vec(),
    };
    assert_clean(&f.display().to_string(), &bytes, &values);
}

/// Panics if `text` (named `what`) holds any of `secrets`.
fn assert_clean(what: &str, text: &[u8], secrets: &[String]) {
    let text = String::from_utf8_lossy(text);
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{what} holds the secret {s:?}");
    }
}

/// Every regular file under `dir` (following symlinked directories, as bazel-bin is one),
/// except those `skip` names.
fn files_under(dir: &Path, skip: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).follow_links(true) {
        let Ok(e) = e else { continue };
        if e.file_type().is_file() && !skip(e.path()) {
            out.push(e.path().to_path_buf());
        }
    }
    out
}

/// Greps every file under `dir` but the credential store itself; returns how many.
fn assert_files_clean(dir: &Path, secrets: &[String]) -> usize {
    let files = files_under(dir, &|p| p.components().any(|c| c.as_os_str() == "docker"));
    for f in &files {
        assert_file_clean(f, secrets);
    }
    files.len()
}

struct Env {
    dir: tempfile::TempDir,
    secrets: Vec<String>,
    runs: usize,
}

impl Env {
    fn new(secrets: Vec<String>) -> Env {
        let dir = tempfile::tempdir().unwrap();
        fake_go_binary(&dir.path().join("app"), 62, 1 << 20);
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        Env {
            dir,
            secrets,
            runs: 0,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn login(&self, host: &str, user: &str, pass: &str) {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let cfg = serde_json::json!({"auths": {host: {"auth": auth}}});
        std::fs::write(self.path("docker/config.json"), cfg.to_string()).unwrap();
    }

    /// Runs rko with `args`; asserts it exits as `ok` says, and that neither stream holds
    /// a secret. Returns stdout and stderr.
    fn rko(&mut self, ok: bool, args: &[&str]) -> (String, String) {
        let o = Command::new(RKO)
            .args(args)
            .current_dir(self.dir.path())
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("REGISTRY_AUTH_FILE", self.path("docker/none.json"))
            .env_remove("KO_DOCKER_REPO")
            .output()
            .unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert_eq!(o.status.success(), ok, "rko {args:?}:\n{out}\n{err}");
        assert_clean(
            &format!("stdout of rko {args:?}"),
            out.as_bytes(),
            &self.secrets,
        );
        assert_clean(
            &format!("stderr of rko {args:?}"),
            err.as_bytes(),
            &self.secrets,
        );
        self.runs += 1;
        (out, err)
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The flows every auth kind goes through; `expect_refused` words the wrong-password
/// failure.
fn flows(e: &mut Env, host: &str, user: &str, pass: &str, expect_refused: &str) {
    let repo = format!("{host}/secret");
    let push = |out: &str| -> Vec<String> {
        [
            "build",
            "app",
            "--import-path",
            "example.com/secret",
            "--push",
            "--repository",
            &repo,
            "--naming",
            "bare",
            "--insecure-registry",
            host,
            "--attempts",
            "1",
            "--image-refs",
            &format!("{out}.refs.json"),
            "--tarball",
            &format!("{out}.tar"),
            "--layout",
            &format!("{out}.layout"),
            "--digest-file",
            &format!("{out}.digest"),
        ]
        .map(String::from)
        .to_vec()
    };

    // No credentials, then a wrong password: refused, and the refusal quotes no secret.
    let v = push("none");
    let (_, err) = e.rko(false, &strs(&v));
    assert!(err.contains("requires authentication"), "{err}");
    e.login(host, user, &format!("{pass}-wrong"));
    let v = push("wrong");
    let (_, err) = e.rko(false, &strs(&v));
    assert!(err.contains(expect_refused), "{err}");
    assert!(!err.contains(&format!("{pass}-wrong")), "{err}");

    // Right: a push, then shallow and eager pulls, and a build on the shallow base whose
    // layers come from the registry with the credentials.
    e.login(host, user, pass);
    let v = push("good");
    let (out, _) = e.rko(true, &strs(&v));
    let reference = out.trim().to_string();
    for (dir, eager) in [("shallow", false), ("eager", true)] {
        let mut a = vec!["pull", &reference, "-o", dir, "--insecure-registry", host];
        if eager {
            a.push("--eager");
        }
        e.rko(true, &a);
    }
    e.rko(
        true,
        &[
            "build",
            "app",
            "--import-path",
            "example.com/secret/two",
            "--base",
            "shallow",
            "--tarball",
            "on-shallow.tar",
            "--push",
            "--repository",
            &format!("{repo}-two"),
            "--insecure-registry",
            host,
            "--image-refs",
            "two.refs.json",
        ],
    );
    assert!(e.path("good.refs.json").exists() && e.path("on-shallow.tar").exists());
    let n = assert_files_clean(e.dir.path(), &e.secrets);
    assert!(n > 10, "only {n} output files");
    eprintln!("{} rko runs, {n} output files: no secret", e.runs);
}

#[test]
fn basic_auth_flows_write_no_secret_anywhere() {
    common::require_tools!("docker-registry", "openssl", "htpasswd");
    let (user, pass) = ("sec-user", "Basic-Secret-9f3c");
    let reg = Registry::start(RegistryOptions::tls_auth(user, pass));
    let mut e = Env::new(secrets(user, pass));
    flows(&mut e, &reg.host(), user, pass, "refused the credentials");
}

#[test]
fn token_auth_flows_write_no_secret_anywhere() {
    common::require_tools!("go", "openssl", "docker-registry");
    let (user, pass) = ("tok-user", "Token-Secret-51ab");
    let tokens = TokenServer::start(user, pass);
    let reg = Registry::start(RegistryOptions {
        tls: true,
        ..tokens.registry_options()
    });
    // A token's header (`eyJ…`, the same for every token of this server's key) and the
    // whole token asked for just now.
    let token = token_of(&tokens, user, pass);
    let header = token.split('.').next().unwrap().to_string();
    assert!(header.len() > 20 && token.len() > 100, "{token}");
    let mut secrets = secrets(user, pass);
    secrets.extend([header, token]);
    let mut e = Env::new(secrets);
    flows(&mut e, &reg.host(), user, pass, "refused the credentials");
}

#[test]
fn bazel_push_with_credentials_writes_no_secret_to_outputs_or_the_execution_log() {
    common::require_tools!("bazel", "go", "docker-registry", "openssl", "htpasswd");
    let _serial = bazel::serial();
    let (user, pass) = ("bzl-user", "Bazel-Secret-77d1");
    let secrets = secrets(user, pass);
    // The base on a plain registry; the push to a TLS registry with basic auth.
    let base_reg = Registry::start(RegistryOptions::plain());
    let scratch = tempfile::tempdir().unwrap();
    let base_digest = common::registry::push_two_platform_base(&base_reg, scratch.path());
    let reg = Registry::start(RegistryOptions::tls_auth(user, pass));
    let docker = scratch.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let login = |p: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{p}"));
        let cfg = serde_json::json!({"auths": {reg.host(): {"auth": auth}}});
        std::fs::write(docker.join("config.json"), cfg.to_string()).unwrap();
    };

    let mut ws = Workspace::copy(&bazel::repo_root().join("tests/e2e/ws"), "ws-secrets");
    let host = base_reg.host();
    ws.write("e2e.bzl", &common::e2e_bzl(&host, &host, &base_digest));
    ws.env("DOCKER_CONFIG", &docker);
    ws.env("REGISTRY_AUTH_FILE", scratch.path().join("none.json"));
    let log = |name: &str| scratch.path().join(name).display().to_string();
    let exec_log = |name: &str| format!("--execution_log_json_file={}", log(name));
    let repo = format!("{}/bzl", reg.host());
    let push = |name: &str| {
        vec![
            "run".to_string(),
            exec_log(name),
            "//cmd/foo:image.push".to_string(),
            "--".to_string(),
            "--repository".to_string(),
            repo.clone(),
            "--insecure-registry".to_string(),
            reg.host(),
            "--attempts".to_string(),
            "1".to_string(),
        ]
    };

    let (out, err) = ws.ok(&["build", &exec_log("build.json"), "//cmd/foo:image"]);
    for (what, text) in [("build stdout", out), ("build stderr", err)] {
        assert_clean(what, text.as_bytes(), &secrets);
    }
    login(&format!("{pass}-wrong"));
    let err = ws.fail(&strs(&push("wrong.json")));
    assert!(err.contains("refused the credentials"), "{err}");
    assert_clean("failed bazel run stderr", err.as_bytes(), &secrets);
    login(pass);
    let (out, err) = ws.ok(&strs(&push("push.json")));
    assert!(out.contains(&format!("{repo}@sha256:")), "{out}\n{err}");
    for (what, text) in [("push stdout", out), ("push stderr", err)] {
        assert_clean(what, text.as_bytes(), &secrets);
    }
    let mut grepped = 0;
    for name in ["build.json", "wrong.json", "push.json"] {
        let text = std::fs::read(log(name)).unwrap_or_default();
        // A run whose actions are all up to date logs no spawn (an empty file).
        assert!(
            name != "build.json" || !text.is_empty(),
            "no execution log {name}"
        );
        assert_clean(&format!("execution log {name}"), &text, &secrets);
        grepped += 1;
    }
    let outputs = files_under(&ws.dir.join("bazel-bin"), &|_| false);
    for f in &outputs {
        assert_file_clean(f, &secrets);
    }
    assert!(outputs.len() > 5, "only {} outputs", outputs.len());
    eprintln!(
        "bazel: {grepped} execution logs and {} outputs: no secret",
        outputs.len()
    );
}
