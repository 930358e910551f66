//! Driving the real Bazel (Debian `bazel-bootstrap` 4.2.3) on copies of the workspaces under
//! tests/e2e/, and an nginx WebDAV server on loopback as Bazel's HTTP remote cache.
//!
//! Every workspace copy gets its own output base under one shared output user root (so the
//! embedded install base is unpacked once); dropping a [`Workspace`] expunges its output base,
//! which also stops its Bazel server, even when the test failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The rules_ko checkout under test.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One Bazel build at a time: the machine has 2 cores and each server holds ~250 MB.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A copy of a test workspace with its own Bazel output base.
pub struct Workspace {
    pub dir: PathBuf,
    _holder: TempDir,
    env: Vec<(String, String)>,
}

/// Bazel's output user root shared by all test workspaces.
fn output_user_root() -> PathBuf {
    std::env::temp_dir().join("rko-e2e-bazel")
}

/// Copies `src` to `dest` (a new directory), leaving out Bazel's convenience symlinks and
/// user.bazelrc.
pub fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name_s = name.to_string_lossy();
        if name_s.starts_with("bazel-") || name_s == "user.bazelrc" {
            continue;
        }
        let ty = entry.file_type().unwrap();
        let to = dest.join(&name);
        if ty.is_dir() {
            copy_tree(&entry.path(), &to);
        } else if ty.is_file() {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

impl Workspace {
    /// Copies `src` into a fresh temporary directory at `subpath` below it (so two copies
    /// can sit at different depths) and writes user.bazelrc: rules_ko from this checkout,
    /// the rko under test, the offline stand-ins for Debian's Bazel, a shared GOCACHE.
    pub fn copy(src: &Path, subpath: &str) -> Workspace {
        Self::copy_with(src, subpath, true)
    }

    /// As [`Workspace::copy`]; without `rko_binary` the rko toolchain is built from the
    /// checkout's sources by cargo (`rules_ko_register_toolchains()` with no $RKO_BINARY).
    pub fn copy_with(src: &Path, subpath: &str, rko_binary: bool) -> Workspace {
        let holder = tempfile::Builder::new()
            .prefix("rko-e2e-ws-")
            .tempdir()
            .unwrap();
        let dir = holder.path().join(subpath);
        copy_tree(src, &dir);
        let go_cache = super::go_cache();
        std::fs::create_dir_all(&go_cache).unwrap();
        let root = repo_root();
        let rc = [
            format!("build --override_repository=rules_ko={}", root.display()),
            if rko_binary {
                format!("build --repo_env=RKO_BINARY={}", super::RKO)
            } else {
                "build --repo_env=RKO_BINARY=".to_string()
            },
            format!(
                "build --override_repository=rules_cc={}",
                root.join("tests/e2e/offline/rules_cc").display()
            ),
            "build --override_repository=rules_java=/usr/share/bazel/rules/java".to_string(),
            // rules_ko_dependencies() fetches bazel_skylib; Debian's bazel-skylib offline.
            "build --override_repository=bazel_skylib=/usr/share/bazel/tools/skylib".to_string(),
            format!("build --action_env=GOCACHE={}", go_cache.display()),
            format!("build --sandbox_writable_path={}", go_cache.display()),
            "build --show_progress_rate_limit=5".to_string(),
        ];
        std::fs::write(dir.join("user.bazelrc"), rc.join("\n") + "\n").unwrap();
        Workspace {
            dir,
            _holder: holder,
            env: Vec::new(),
        }
    }

    /// Sets an environment variable for every later Bazel command (and so for `bazel run`).
    pub fn env(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) {
        self.env.push((
            key.to_string(),
            value.as_ref().to_string_lossy().into_owned(),
        ));
    }

    /// A `bazel` command in this workspace.
    pub fn bazel(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bazel");
        cmd.arg(format!(
            "--output_user_root={}",
            output_user_root().display()
        ))
        .arg("--max_idle_secs=900")
        .args(args)
        .current_dir(&self.dir)
        .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.bazel(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run bazel (apt-get install bazel-bootstrap): {e}"))
    }

    /// Runs bazel, asserts success; returns (stdout, stderr).
    pub fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.output(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "bazel {} failed in {} ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            args.join(" "),
            self.dir.display(),
            out.status
        );
        (stdout, stderr)
    }

    /// Runs bazel, asserts failure; returns stderr.
    pub fn fail(&self, args: &[&str]) -> String {
        let out = self.output(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "bazel {} succeeded but should have failed:\n{stderr}",
            args.join(" ")
        );
        stderr
    }

    /// A file under bazel-bin.
    pub fn bin(&self, rel: &str) -> PathBuf {
        self.dir.join("bazel-bin").join(rel)
    }

    /// Reads a file of the workspace.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.join(rel)).unwrap()
    }

    /// Writes a file of the workspace.
    pub fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.dir.join(rel), text).unwrap();
    }

    /// `bazel clean --expunge`: deletes the output base and stops the server.
    pub fn expunge(&self) {
        let _ = self.bazel(&["clean", "--expunge"]).output();
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        self.expunge();
    }
}

/// One spawn from Bazel's `--execution_log_json_file`.
#[derive(Debug, Clone)]
pub struct Spawn {
    pub mnemonic: String,
    pub progress: String,
    pub remote_cache_hit: bool,
    /// The strategy that ran it (`linux-sandbox`, `remote`, ...).
    pub runner: String,
    /// (exec path, sha256 hex, size) of each output.
    pub outputs: Vec<(String, String, u64)>,
}

/// Parses an execution log: a stream of JSON objects.
pub fn read_execution_log(path: &Path) -> Vec<Spawn> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::Deserializer::from_str(&text)
        .into_iter::<serde_json::Value>()
        .map(|v| {
            let v = v.expect("execution log is JSON");
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            Spawn {
                mnemonic: s("mnemonic"),
                progress: s("progressMessage"),
                remote_cache_hit: v["remoteCacheHit"].as_bool().unwrap_or(false),
                runner: s("runner"),
                outputs: v["actualOutputs"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|o| {
                                (
                                    o["path"].as_str().unwrap_or("").to_string(),
                                    o["digest"]["hash"].as_str().unwrap_or("").to_string(),
                                    o["digest"]["sizeBytes"]
                                        .as_str()
                                        .and_then(|n| n.parse().ok())
                                        .unwrap_or(0),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// The `N remote cache hit` count from Bazel's summary line (0 when absent).
pub fn remote_cache_hits(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.contains("processes:"))
        .flat_map(|l| l.split([':', ',']))
        .filter_map(|part| part.trim().strip_suffix(" remote cache hit"))
        .filter_map(|n| n.trim().parse::<usize>().ok())
        .max()
        .unwrap_or(0)
}

/// nginx with WebDAV PUT on 127.0.0.1: a Bazel HTTP remote cache. Killed on drop.
pub struct CacheServer {
    child: Child,
    dir: TempDir,
    pub port: u16,
}

impl CacheServer {
    pub fn start() -> CacheServer {
        let mut dir = tempfile::Builder::new()
            .prefix("rko-e2e-cache-")
            .tempdir()
            .unwrap();
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        for sub in ["cache", "body", "logs"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let root = is_root();
        if root {
            // nginx's workers run as www-data: let them into the temporary directory.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
            let status = Command::new("chown")
                .args(["-R", "www-data:www-data"])
                .arg(d.join("cache"))
                .arg(d.join("body"))
                .status()
                .unwrap();
            assert!(status.success(), "chown www-data failed");
        }
        let mut last = String::new();
        for _ in 0..5 {
            let port = super::registry::free_port();
            let conf = format!(
                "{user}worker_processes 1; pid {d}/nginx.pid; error_log {d}/logs/error.log warn;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{ access_log {d}/logs/access.log; client_body_temp_path {d}/body;\n\
                   server {{ listen 127.0.0.1:{port};\n\
                     location / {{ root {d}/cache; dav_methods PUT; create_full_put_path on;\n\
                       dav_access user:rw group:rw all:r; client_max_body_size 0; }} }} }}\n",
                user = if root { "user www-data; " } else { "" },
                d = d.display()
            );
            std::fs::write(d.join("nginx.conf"), conf).unwrap();
            let child = Command::new("nginx")
                .arg("-c")
                .arg(d.join("nginx.conf"))
                .arg("-p")
                .arg(d)
                .arg("-e")
                .arg(d.join("logs/error.log"))
                .args(["-g", "daemon off;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run nginx (apt-get install nginx-light): {e}"));
            let mut server = CacheServer { child, dir, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return server;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = server.child.kill();
            let _ = server.child.wait();
            last = std::fs::read_to_string(server.dir.path().join("logs/error.log"))
                .unwrap_or_default();
            dir = std::mem::replace(&mut server.dir, TempDir::new().unwrap());
        }
        panic!("nginx did not start:\n{last}");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every file the cache holds: path relative to the cache root -> size.
    pub fn entries(&self) -> BTreeMap<String, u64> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, u64>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else if let Ok(m) = e.metadata() {
                    let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                    out.insert(rel, m.len());
                }
            }
        }
        let root = self.dir.path().join("cache");
        let mut out = BTreeMap::new();
        walk(&root, &root, &mut out);
        out
    }
}

impl Drop for CacheServer {
    fn drop(&mut self) {
        // TERM lets the master stop its worker; KILL if it does not within 5 s.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("pkill")
            .args(["-KILL", "-P", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
