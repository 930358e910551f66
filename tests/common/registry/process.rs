//! A real local registry: Debian's `docker-registry` (CNCF distribution 2.8) serving on
//! 127.0.0.1 from its own temporary directory, with optional TLS (a CA and a server
//! certificate made by `openssl`), client certificates (mTLS, with a second CA that signs
//! one), basic auth (`htpasswd`) or token auth. Killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::http::http_request;

/// The registry program; override with `RKO_TEST_REGISTRY`.
fn registry_program() -> String {
    std::env::var("RKO_TEST_REGISTRY").unwrap_or_else(|_| "docker-registry".to_string())
}

/// How a [`Registry`] is configured.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Serve HTTPS with a certificate for 127.0.0.1 / localhost signed by a fresh CA.
    pub tls: bool,
    /// With `tls`, the certificate also names the IP 0.0.0.0, the address a test uses to
    /// reach the registry through a forward proxy (clients never proxy loopback addresses,
    /// and Linux connects 0.0.0.0 to the local listeners).
    pub any_address_san: bool,
    /// With `tls`, require a client certificate signed by a second, fresh CA
    /// (`http.tls.clientcas`); [`Registry::client_cert`] gives one it accepts.
    pub client_certs: bool,
    /// Require HTTP basic auth with this (user, password) (htpasswd, bcrypt).
    pub auth: Option<(String, String)>,
    /// Require Bearer tokens from this token server instead.
    pub token: Option<TokenAuth>,
}

/// Token auth settings for the registry (see [`TokenServer`](super::TokenServer)).
#[derive(Clone, Debug)]
pub struct TokenAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub rootcertbundle: PathBuf,
}

impl RegistryOptions {
    pub fn plain() -> Self {
        Self::default()
    }

    pub fn tls_auth(user: &str, pass: &str) -> Self {
        RegistryOptions {
            tls: true,
            auth: Some((user.to_string(), pass.to_string())),
            ..Self::default()
        }
    }

    /// TLS without auth.
    pub fn tls() -> Self {
        RegistryOptions {
            tls: true,
            ..Self::default()
        }
    }
}

/// A `docker-registry serve` process on 127.0.0.1 with filesystem storage in its own
/// temporary directory. Killed (SIGKILL) and reaped on drop.
pub struct Registry {
    child: Child,
    port: u16,
    opts: RegistryOptions,
    dir: TempDir,
}

const START_ATTEMPTS: usize = 5;
const START_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

pub(super) fn run_tool(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?} (is it installed?): {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{:?} failed: {}\n{}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Registry {
    /// Starts a registry and waits until it serves `/v2/`. Panics (with the server log)
    /// if it does not come up within ~10 s.
    pub fn start(opts: RegistryOptions) -> Registry {
        assert!(
            opts.tls || !(opts.any_address_san || opts.client_certs),
            "any_address_san and client_certs need tls"
        );
        let mut dir = tempfile::Builder::new()
            .prefix("rko-registry-")
            .tempdir()
            .unwrap();
        let d = &dir.path().to_path_buf();
        std::fs::create_dir_all(d.join("storage")).unwrap();
        if opts.tls {
            // A CA and a server certificate it signs, as real deployments have (rustls, like
            // browsers, refuses a CA certificate used as the server's own).
            let ossl = |args: &[&str]| openssl(d, args);
            ossl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=rko-test-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ]);
            ossl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "server.csr",
            ]);
            let any = if opts.any_address_san {
                ",IP:0.0.0.0"
            } else {
                ""
            };
            std::fs::write(
                d.join("server.ext"),
                format!(
                    "subjectAltName=IP:127.0.0.1,DNS:localhost{any}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                ),
            )
            .unwrap();
            ossl(&[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                "cert.pem",
                "-extfile",
                "server.ext",
            ]);
            // A directory in the layout of containers' `--cert-dir` / docker's certs.d.
            std::fs::create_dir_all(d.join("certs")).unwrap();
            std::fs::copy(d.join("ca.pem"), d.join("certs/ca.crt")).unwrap();
            if opts.client_certs {
                make_client_cert(d);
            }
        }
        if let Some((user, pass)) = &opts.auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .unwrap_or_else(|e| panic!("cannot run htpasswd (apache2-utils): {e}"));
            assert!(out.status.success(), "htpasswd failed: {out:?}");
            std::fs::write(d.join("htpasswd"), out.stdout).unwrap();
        }

        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let cfg = d.join("config.yml");
            std::fs::write(&cfg, Self::config(d, port, &opts)).unwrap();
            let log = std::fs::File::create(d.join("registry.log")).unwrap();
            let mut cmd = Command::new(registry_program());
            cmd.arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .current_dir(d);
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("REGISTRY_") {
                    cmd.env_remove(k);
                }
            }
            let child = cmd.spawn().unwrap_or_else(|e| {
                panic!(
                    "cannot run `{}` (apt-get install docker-registry): {e}",
                    registry_program()
                )
            });
            // From here on, dropping `reg` kills the process.
            let mut reg = Registry {
                child,
                port,
                opts: opts.clone(),
                dir,
            };
            match reg.wait_ready() {
                Ok(()) => return reg,
                Err(log) if log.contains("address already in use") => {
                    last_log = log;
                    let _ = reg.child.kill();
                    let _ = reg.child.wait();
                    // Keep the directory for the next attempt.
                    dir = std::mem::replace(&mut reg.dir, TempDir::new().unwrap());
                }
                Err(log) => panic!("registry did not start:\n{log}"),
            }
        }
        panic!("registry did not find a free port in {START_ATTEMPTS} attempts:\n{last_log}");
    }

    fn config(d: &Path, port: u16, opts: &RegistryOptions) -> String {
        let mut http = format!("  addr: 127.0.0.1:{port}\n  secret: rko-test-secret\n");
        if opts.tls {
            http.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("cert.pem").display(),
                d.join("key.pem").display()
            ));
            if opts.client_certs {
                http.push_str(&format!(
                    "    clientcas:\n      - {}\n",
                    d.join("client-ca.pem").display()
                ));
            }
        }
        let mut cfg = format!(
            "version: 0.1\n\
             log:\n  level: info\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n{http}\
             health:\n  storagedriver:\n    enabled: false\n",
            d.join("storage").display()
        );
        if let Some(t) = &opts.token {
            cfg.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                t.realm,
                t.service,
                t.issuer,
                t.rootcertbundle.display()
            ));
        } else if opts.auth.is_some() {
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: rko-test\n    path: {}\n",
                d.join("htpasswd").display()
            ));
        }
        cfg
    }

    /// Waits for the "listening on" log line and a TCP connection, and for plain HTTP also
    /// a `GET /v2/` answered 200 or 401. Returns the log on failure.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("registry exited with {status}\n{}", self.log()));
            }
            if self.log().contains("listening on") && self.probe() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "registry not ready after {START_TIMEOUT:?}\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    fn probe(&self) -> bool {
        if self.opts.tls {
            return TcpStream::connect_timeout(
                &self.host().parse().unwrap(),
                Duration::from_secs(1),
            )
            .is_ok();
        }
        match http_request(&self.host(), "GET", "/v2/", &[], b"") {
            Ok(r) => {
                (r.status == 200 || r.status == 401)
                    && r.header("docker-distribution-api-version").is_some()
            }
            Err(_) => false,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://HOST` or `https://HOST`.
    pub fn url(&self) -> String {
        let scheme = if self.opts.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    pub fn is_tls(&self) -> bool {
        self.opts.tls
    }

    /// The self-signed certificate (PEM) the registry serves, to trust as a CA.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.opts.tls.then(|| self.dir.path().join("ca.pem"))
    }

    /// A directory holding the certificate as `ca.crt` (for skopeo's `--cert-dir` etc.);
    /// with `client_certs`, also the client certificate as `client.cert` / `client.key`.
    pub fn cert_dir(&self) -> Option<PathBuf> {
        self.opts.tls.then(|| self.dir.path().join("certs"))
    }

    /// With `client_certs`: a client certificate the registry accepts and its key (PEM),
    /// to place as `client.cert` / `client.key` in a certs.d directory.
    pub fn client_cert(&self) -> Option<(PathBuf, PathBuf)> {
        self.opts.client_certs.then(|| {
            (
                self.dir.path().join("client.cert"),
                self.dir.path().join("client.key"),
            )
        })
    }

    /// `0.0.0.0:PORT`: the registry addressed so that clients send it through a proxy
    /// (see [`RegistryOptions::any_address_san`]).
    pub fn any_host(&self) -> String {
        format!("0.0.0.0:{}", self.port)
    }

    /// The (user, password) the registry requires, if any.
    pub fn credentials(&self) -> Option<(String, String)> {
        self.opts.auth.clone()
    }

    /// `user:pass` for skopeo's `--creds`, if auth is on.
    pub fn creds_arg(&self) -> Option<String> {
        self.opts.auth.as_ref().map(|(u, p)| format!("{u}:{p}"))
    }

    /// The server's log so far (stdout and stderr), for panic messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The storage root (`rootdirectory`).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's own temporary directory (config, certificates, log, storage).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn v2(&self) -> PathBuf {
        self.storage_dir().join("docker/registry/v2")
    }

    fn repo_dir(&self, repo: &str) -> PathBuf {
        self.v2().join("repositories").join(repo)
    }

    /// How many blobs (layers, configs and manifests alike) the registry stores.
    pub fn blob_count(&self) -> usize {
        let root = self.v2().join("blobs/sha256");
        let Ok(prefixes) = std::fs::read_dir(&root) else {
            return 0;
        };
        prefixes
            .flatten()
            .flat_map(|p| std::fs::read_dir(p.path()).into_iter().flatten().flatten())
            .filter(|b| b.path().join("data").is_file())
            .count()
    }

    /// Whether blob `digest` (`sha256:…`) is linked into `repo` (layers and configs).
    pub fn has_blob(&self, repo: &str, digest: &str) -> bool {
        self.repo_dir(repo)
            .join("_layers/sha256")
            .join(hex_of(digest))
            .join("link")
            .is_file()
    }

    /// Whether manifest `digest` is stored in `repo`.
    pub fn has_manifest(&self, repo: &str, digest: &str) -> bool {
        self.repo_dir(repo)
            .join("_manifests/revisions/sha256")
            .join(hex_of(digest))
            .join("link")
            .is_file()
    }

    /// The manifest digest `repo:tag` points to, if the tag exists.
    pub fn tag_digest(&self, repo: &str, tag: &str) -> Option<String> {
        let link = self
            .repo_dir(repo)
            .join("_manifests/tags")
            .join(tag)
            .join("current/link");
        std::fs::read_to_string(link)
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// How many blob uploads of `repo` were started and not completed or cancelled.
    pub fn pending_uploads(&self, repo: &str) -> usize {
        std::fs::read_dir(self.repo_dir(repo).join("_uploads"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

fn hex_of(digest: &str) -> &str {
    digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"))
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In `d`: a client CA (`client-ca.pem`, the registry's `clientcas`) and a client
/// certificate it signs (`client.cert`, `client.key`), also copied into `d/certs` beside
/// `ca.crt`, the layout of a certs.d directory.
fn make_client_cert(d: &Path) {
    let ossl = |args: &[&str]| openssl(d, args);
    ossl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=rko-test-client-ca",
        "-keyout",
        "client-ca.key",
        "-out",
        "client-ca.pem",
    ]);
    ossl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=rko-test-client",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
    ]);
    std::fs::write(
        d.join("client.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    ossl(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "client-ca.pem",
        "-CAkey",
        "client-ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "client.cert",
        "-extfile",
        "client.ext",
    ]);
    for f in ["client.cert", "client.key"] {
        std::fs::copy(d.join(f), d.join("certs").join(f)).unwrap();
    }
}

/// Runs `openssl ARGS…` in `dir`, asserting success.
pub(super) fn openssl(dir: &Path, args: &[&str]) {
    run_tool(
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null()),
    );
}
