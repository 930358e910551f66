//! Test infrastructure for registry push/pull: a real local registry (Debian's
//! `docker-registry`, CNCF distribution 2.8) with optional TLS and basic auth, a fault
//! injecting HTTP/1.1 proxy to put in front of it, and a minimal raw HTTP client.
//!
//! Everything is bounded: servers are killed on drop, sockets have timeouts, and waiting
//! for a server to come up gives up after a few seconds with its log in the panic message.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The registry program; override with `RKO_TEST_REGISTRY`.
fn registry_program() -> String {
    std::env::var("RKO_TEST_REGISTRY").unwrap_or_else(|_| "docker-registry".to_string())
}

/// How a [`Registry`] is configured.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Serve HTTPS with a fresh self-signed certificate for 127.0.0.1 / localhost.
    pub tls: bool,
    /// Require HTTP basic auth with this (user, password) (htpasswd, bcrypt).
    pub auth: Option<(String, String)>,
    /// Require Bearer tokens from this token server instead.
    pub token: Option<TokenAuth>,
}

/// Token auth settings for the registry (see [`TokenServer`]).
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
            token: None,
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

fn run_tool(cmd: &mut Command) {
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
            std::fs::write(
                d.join("server.ext"),
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
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

    /// A directory holding the certificate as `ca.crt` (for skopeo's `--cert-dir` etc.).
    pub fn cert_dir(&self) -> Option<PathBuf> {
        self.opts.tls.then(|| self.dir.path().join("certs"))
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

// ---------------------------------------------------------------------------------------
// Raw HTTP client
// ---------------------------------------------------------------------------------------

/// A response read by [`http_request`].
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header (name, value) pairs in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `Authorization` header value for HTTP basic auth.
pub fn basic_auth(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{user}:{pass}").as_bytes())
    )
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Sends one plain-HTTP/1.1 request to `addr` (`host:port`) with `Connection: close`
/// (and `Host`, and `Content-Length` when `body` is not empty, unless given in
/// `headers`), and reads the response to EOF. An error means no complete status line
/// arrived (refused, reset, or closed without answering). 10 s socket timeouts.
pub fn http_request(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<RawResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    if !has("host") {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() && !has("content-length") && !has("transfer-encoding") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes())?;
    let write_result = s.write_all(body).and_then(|_| s.flush());
    // Read whatever answer there is even if the write failed (the server may answer
    // early and close); fall back to the write error if there is none.
    let mut raw = Vec::new();
    let read_result = s.read_to_end(&mut raw);
    match parse_response(&raw) {
        Some(r) => Ok(r),
        None => {
            write_result?;
            read_result?;
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("connection closed without a response ({} bytes)", raw.len()),
            ))
        }
    }
}

fn parse_response(raw: &[u8]) -> Option<RawResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = |h: &Vec<(String, String)>| {
        h.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        })
    };
    let mut r = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if chunked(&r.headers) {
        let mut rd = BufReader::new(&body[..]);
        body = read_chunked(&mut rd).ok()?;
    }
    r.body = body;
    Some(r)
}

// ---------------------------------------------------------------------------------------
// Fault injecting proxy
// ---------------------------------------------------------------------------------------

/// What the proxy does to a matching request instead of forwarding it unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Read the whole request, do not forward it, answer this status with an empty body
    /// (and `Retry-After: N` if given).
    Status(u16, Option<u32>),
    /// Read part of the request body (half its length, at most 1 MiB, at least one byte
    /// if there is a body), then close the connection without answering and without
    /// forwarding: a connection drop mid-upload.
    DropMidBody,
    /// Read the whole request and forward it (the registry processes it), then close the
    /// client connection without relaying the response: a response lost in transit.
    DropBeforeResponse,
    /// Wait this long, then forward normally.
    Delay(Duration),
    /// Answer 200 with this body and content type instead of forwarding (a registry that
    /// serves content not matching its digest, which a real one cannot be made to do).
    Respond(String, Vec<u8>),
}

/// A fault applied to the `nth` (1-based) and the following `count - 1` requests whose
/// method equals `method` (case-insensitive; `*` matches any) and whose request target
/// (path and query) contains `path_contains`.
#[derive(Clone, Debug)]
pub struct FaultRule {
    pub method: String,
    pub path_contains: String,
    pub nth: usize,
    pub count: usize,
    pub fault: Fault,
}

impl FaultRule {
    /// The fault on the `nth` (1-based) matching request only.
    pub fn nth(method: &str, path_contains: &str, nth: usize, fault: Fault) -> Self {
        assert!(nth >= 1, "nth is 1-based");
        FaultRule {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            nth,
            count: 1,
            fault,
        }
    }

    /// The fault on the first matching request.
    pub fn first(method: &str, path_contains: &str, fault: Fault) -> Self {
        Self::nth(method, path_contains, 1, fault)
    }

    /// The fault on every matching request.
    pub fn always(method: &str, path_contains: &str, fault: Fault) -> Self {
        FaultRule {
            count: usize::MAX,
            ..Self::nth(method, path_contains, 1, fault)
        }
    }

    /// Applies to `count` consecutive matching requests starting at the `nth`.
    pub fn times(mut self, count: usize) -> Self {
        self.count = count;
        self
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        (self.method == "*" || self.method.eq_ignore_ascii_case(method))
            && target.contains(&self.path_contains)
    }
}

/// One request seen by the proxy: method, path (without the query), and the status the
/// client got; 0 if the connection was dropped without an answer.
pub type LoggedRequest = (String, String, u16);

struct ProxyState {
    upstream: String,
    /// Each rule with the number of matching requests seen so far.
    rules: Mutex<Vec<(FaultRule, usize)>>,
    log: Mutex<Vec<LoggedRequest>>,
    stop: AtomicBool,
    conns: Mutex<HashMap<u64, TcpStream>>,
}

/// A std-only HTTP/1.1 forwarding proxy on 127.0.0.1 in front of a plain-HTTP upstream
/// (e.g. a [`Registry`] without TLS), injecting [`Fault`]s. Each client connection carries
/// one request: the proxy sends `Connection: close` both ways. The `Host` header is
/// forwarded unchanged, so the registry's `Location` URLs point back at the proxy.
/// Request bodies (Content-Length or chunked, which is forwarded de-chunked) are
/// buffered; responses are streamed. Stopped on drop.
pub struct FaultProxy {
    addr: String,
    state: Arc<ProxyState>,
    accept: Option<JoinHandle<()>>,
}

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEAD: usize = 64 * 1024;

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` (`host:port`, plain HTTP).
    pub fn start(upstream: &str, rules: Vec<FaultRule>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind proxy");
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(ProxyState {
            upstream: upstream.to_string(),
            rules: Mutex::new(rules.into_iter().map(|r| (r, 0)).collect()),
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
        });
        let st = state.clone();
        let accept = std::thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn(move || {
                let mut id = 0u64;
                for conn in listener.incoming() {
                    if st.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    id += 1;
                    if let Ok(c) = conn.try_clone() {
                        st.conns.lock().unwrap().insert(id, c);
                    }
                    let st2 = st.clone();
                    let this = id;
                    let _ = std::thread::Builder::new()
                        .name("fault-proxy-conn".into())
                        .spawn(move || {
                            handle_conn(&st2, conn);
                            st2.conns.lock().unwrap().remove(&this);
                        });
                }
            })
            .unwrap();
        FaultProxy {
            addr,
            state,
            accept: Some(accept),
        }
    }

    /// A proxy in front of `registry`, which must not use TLS.
    pub fn for_registry(registry: &Registry, rules: Vec<FaultRule>) -> FaultProxy {
        assert!(!registry.is_tls(), "FaultProxy forwards plain HTTP only");
        Self::start(&registry.host(), rules)
    }

    /// `127.0.0.1:PORT`, to use as the registry host.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// Adds a rule (counting matches from now on).
    pub fn add_fault(&self, rule: FaultRule) {
        self.state.rules.lock().unwrap().push((rule, 0));
    }

    /// Removes all rules.
    pub fn clear_faults(&self) {
        self.state.rules.lock().unwrap().clear();
    }

    /// The requests handled so far, each logged just before its answer (or the dropped
    /// connection) reaches the client.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.state.log.lock().unwrap().clone()
    }

    /// How many logged requests have this method and a path containing `path_contains`.
    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        self.request_log()
            .iter()
            .filter(|(m, p, _)| m.eq_ignore_ascii_case(method) && p.contains(path_contains))
            .count()
    }

    /// The request log as text, for assertion messages.
    pub fn log_text(&self) -> String {
        self.request_log()
            .iter()
            .map(|(m, p, s)| format!("{s} {m} {p}\n"))
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Unblock accept().
        let _ = TcpStream::connect_timeout(&self.addr.parse().unwrap(), Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        // End connections still in progress.
        for (_, c) in self.state.conns.lock().unwrap().drain() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

struct Request {
    method: String,
    target: String,
    /// Headers except Connection, Keep-Alive, Proxy-Connection, Expect,
    /// Transfer-Encoding and Content-Length.
    headers: Vec<(String, String)>,
    content_length: Option<usize>,
    chunked: bool,
    expect_continue: bool,
}

fn read_line_limited(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    r.take(MAX_HEAD as u64).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated or overlong line",
        ));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn read_request_head(r: &mut impl BufRead) -> io::Result<Request> {
    let line = read_line_limited(r)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    };
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        headers: Vec::new(),
        content_length: None,
        chunked: false,
        expect_continue: false,
    };
    loop {
        let l = read_line_limited(r)?;
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k.to_ascii_lowercase().as_str() {
            "content-length" => {
                req.content_length = Some(v.parse().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length")
                })?)
            }
            "transfer-encoding" => req.chunked = v.to_ascii_lowercase().contains("chunked"),
            "expect" => req.expect_continue = v.eq_ignore_ascii_case("100-continue"),
            "connection" | "keep-alive" | "proxy-connection" => {}
            _ => req.headers.push((k.to_string(), v.to_string())),
        }
    }
    Ok(req)
}

fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line_limited(r)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers up to the empty line.
            while !read_line_limited(r)?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        if !read_line_limited(r)?.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad chunk end"));
        }
    }
}

fn read_body(r: &mut impl BufRead, req: &Request) -> io::Result<Vec<u8>> {
    if req.chunked {
        read_chunked(r)
    } else {
        let mut body = vec![0; req.content_length.unwrap_or(0)];
        r.read_exact(&mut body)?;
        Ok(body)
    }
}

/// Picks the fault for this request, counting it against every matching rule.
fn pick_fault(state: &ProxyState, method: &str, target: &str) -> Option<Fault> {
    let mut rules = state.rules.lock().unwrap();
    let mut picked = None;
    for (rule, seen) in rules.iter_mut() {
        if !rule.matches(method, target) {
            continue;
        }
        *seen += 1;
        let applies = *seen >= rule.nth && *seen - rule.nth < rule.count;
        if applies && picked.is_none() {
            picked = Some(rule.fault.clone());
        }
    }
    picked
}

fn handle_conn(state: &ProxyState, client: TcpStream) {
    let _ = client.set_read_timeout(Some(IO_TIMEOUT));
    let _ = client.set_write_timeout(Some(IO_TIMEOUT));
    let Ok(mut writer) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(client);
    let Ok(req) = read_request_head(&mut reader) else {
        return; // Not a request (e.g. the Drop wake-up connection) or a broken one.
    };
    let mut rec = Recorder {
        state,
        method: &req.method,
        path: req.target.split('?').next().unwrap_or(""),
        done: false,
    };
    let _ = serve(state, &req, &mut reader, &mut writer, &mut rec);
    rec.record(0);
    let _ = writer.shutdown(Shutdown::Both);
}

/// Logs a request once, just before its answer (or the drop) reaches the client, so
/// that a client that has seen the outcome also sees it in the log.
struct Recorder<'a> {
    state: &'a ProxyState,
    method: &'a str,
    path: &'a str,
    done: bool,
}

impl Recorder<'_> {
    fn record(&mut self, status: u16) {
        if !self.done {
            self.done = true;
            let entry = (self.method.to_string(), self.path.to_string(), status);
            self.state.log.lock().unwrap().push(entry);
        }
    }
}

/// Handles one request, recording the status the client is sent (0: none).
fn serve(
    state: &ProxyState,
    req: &Request,
    reader: &mut BufReader<TcpStream>,
    client: &mut TcpStream,
    rec: &mut Recorder,
) -> io::Result<()> {
    let fault = pick_fault(state, &req.method, &req.target);
    if req.expect_continue {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    if fault == Some(Fault::DropMidBody) {
        let part = if req.chunked {
            1
        } else {
            let len = req.content_length.unwrap_or(0);
            (len / 2).clamp(len.min(1), 1 << 20)
        };
        let mut buf = vec![0; part];
        let _ = reader.read_exact(&mut buf);
        // Closing with unread data makes the kernel reset the connection.
        rec.record(0);
        return Ok(());
    }
    let body = read_body(reader, req)?;
    match fault {
        Some(Fault::Status(code, retry_after)) => {
            let mut resp = format!("HTTP/1.1 {code} {}\r\n", reason(code));
            if let Some(s) = retry_after {
                resp.push_str(&format!("Retry-After: {s}\r\n"));
            }
            resp.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
            rec.record(code);
            client.write_all(resp.as_bytes())?;
            client.flush()?;
            return Ok(());
        }
        Some(Fault::Delay(d)) => std::thread::sleep(d),
        Some(Fault::Respond(content_type, bytes)) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            rec.record(200);
            client.write_all(head.as_bytes())?;
            client.write_all(&bytes)?;
            client.flush()?;
            return Ok(());
        }
        _ => {}
    }
    let upstream = match forward(state, req, &body) {
        Ok(u) => u,
        Err(_) => {
            rec.record(502);
            client.write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            return Ok(());
        }
    };
    let (status, head, mut rest) = upstream;
    if fault == Some(Fault::DropBeforeResponse) {
        // Let the registry finish the request, then drop the answer.
        let _ = io::copy(&mut rest, &mut io::sink());
        rec.record(0);
        return Ok(());
    }
    rec.record(status);
    client.write_all(head.as_bytes())?;
    io::copy(&mut rest, client)?;
    client.flush()?;
    Ok(())
}

/// Sends the request upstream; returns the status, the rewritten response head and a
/// reader for the rest of the response (which ends at EOF: `Connection: close`).
fn forward(
    state: &ProxyState,
    req: &Request,
    body: &[u8],
) -> io::Result<(u16, String, BufReader<TcpStream>)> {
    let mut up = TcpStream::connect(&state.upstream)?;
    up.set_read_timeout(Some(IO_TIMEOUT))?;
    up.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if req.chunked || req.content_length.is_some() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes())?;
    up.write_all(body)?;
    up.flush()?;

    let mut r = BufReader::new(up);
    let status_line = read_line_limited(&mut r)?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
    let mut out = format!("{status_line}\r\n");
    loop {
        let l = read_line_limited(&mut r)?;
        if l.is_empty() {
            break;
        }
        let name = l
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if name == "connection" || name == "keep-alive" {
            continue;
        }
        out.push_str(&l);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    Ok((status, out, r))
}

fn reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected",
    }
}

/// The Go token server of tests/goref/tokenserver.go on 127.0.0.1, issuing ES256 tokens
/// for one user; killed on drop.
pub struct TokenServer {
    child: Child,
    addr: String,
    dir: TempDir,
}

impl TokenServer {
    pub const SERVICE: &'static str = "rko-test-registry";
    pub const ISSUER: &'static str = "rko-test-issuer";

    pub fn start(user: &str, pass: &str) -> TokenServer {
        let dir = tempfile::Builder::new()
            .prefix("rko-token-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goref/tokenserver.go");
        let bin = d.join("tokenserver");
        run_tool(
            Command::new("go")
                .args(["build", "-o"])
                .arg(&bin)
                .arg(&src)
                .env("GO111MODULE", "off")
                .env("GOCACHE", super::go_cache()),
        );
        let ossl = |args: &[&str]| openssl(d, args);
        ossl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "token.key",
        ]);
        ossl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "token.key",
            "-days",
            "2",
            "-subj",
            "/CN=rko-test-token",
            "-out",
            "token.pem",
        ]);
        let mut child = Command::new(&bin)
            .arg(d.join("token.key"))
            .arg(d.join("token.pem"))
            .args([user, pass, Self::SERVICE, Self::ISSUER])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut BufReader::new(child.stdout.take().unwrap()), &mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("token server said {line:?}"))
            .to_string();
        TokenServer { child, addr, dir }
    }

    /// Registry options that trust this server's tokens.
    pub fn registry_options(&self) -> RegistryOptions {
        RegistryOptions {
            tls: false,
            auth: None,
            token: Some(TokenAuth {
                realm: format!("http://{}/token", self.addr),
                service: Self::SERVICE.to_string(),
                issuer: Self::ISSUER.to_string(),
                rootcertbundle: self.dir.path().join("token.pem"),
            }),
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `openssl ARGS…` in `dir`, asserting success.
fn openssl(dir: &Path, args: &[&str]) {
    run_tool(
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null()),
    );
}

/// Pushes a two-platform base (the static base plus a small Go program and a release file,
/// for linux/amd64 and linux/arm64) to `reg`/base; returns the index digest.
pub fn push_two_platform_base(reg: &Registry, dir: &Path) -> String {
    let release = dir.join("release.txt");
    std::fs::write(&release, "e2e base 1\n").unwrap();
    let mut descriptors = Vec::new();
    let mut sources: Vec<String> = Vec::new();
    for arch in ["amd64", "arm64"] {
        let bin = super::go_build(
            dir,
            &format!("base-init-{arch}"),
            "package main\n\nfunc main() { println(\"base\") }\n",
            arch,
        );
        let p = |s: &str| dir.join(format!("{s}-{arch}")).display().to_string();
        super::rko_ok([
            "layer",
            "kodata",
            "--file",
            &format!("base-release.txt={}", release.display()),
            "--import-path",
            "example.com/base",
            "-o",
            &p("k.tgz"),
            "--descriptor",
            &p("k.json"),
        ]);
        super::rko_ok([
            "layer",
            "binary",
            "--binary",
            bin.to_str().unwrap(),
            "--import-path",
            "example.com/base/init",
            "--platform",
            &format!("linux/{arch}"),
            "-o",
            &p("b.tgz"),
            "--descriptor",
            &p("b.json"),
        ]);
        super::rko_ok([
            "image",
            "--base",
            "static",
            "--platform",
            &format!("linux/{arch}"),
            "--layer",
            &p("k.json"),
            "--layer",
            &p("b.json"),
            "--config-out",
            &p("config.json"),
            "--manifest-out",
            &p("manifest.json"),
            "--descriptor-out",
            &p("descriptor.json"),
        ]);
        descriptors.push(p("descriptor.json"));
        sources.extend([
            "--blob".into(),
            p("config.json"),
            "--blob".into(),
            p("manifest.json"),
            "--layer".into(),
            format!("{}={}", p("k.json"), p("k.tgz")),
            "--layer".into(),
            format!("{}={}", p("b.json"), p("b.tgz")),
        ]);
    }
    let idx = |s: &str| dir.join(s).display().to_string();
    super::rko_ok([
        "index",
        "--image",
        &descriptors[0],
        "--image",
        &descriptors[1],
        "--index-out",
        &idx("index.json"),
        "--descriptor-out",
        &idx("index.desc.json"),
        "--digest-out",
        &idx("index.digest"),
    ]);
    let mut args: Vec<String> = vec![
        "push-manifest".into(),
        "--root".into(),
        idx("index.desc.json"),
        "--blob".into(),
        idx("index.json"),
    ];
    args.extend(sources);
    args.extend([
        "--repository".into(),
        format!("{}/base", reg.host()),
        "-o".into(),
        idx("push.json"),
    ]);
    super::rko_ok(&args);
    super::rko_ok([
        "push",
        "--manifest",
        &idx("push.json"),
        "--insecure-registry",
        &reg.host(),
    ]);
    std::fs::read_to_string(dir.join("index.digest"))
        .unwrap()
        .trim()
        .to_string()
}
