//! A fault-injecting HTTP/1.1 forwarding proxy to put in front of a plain-HTTP registry:
//! it answers chosen requests with a status, drops connections mid-upload or before the
//! response, delays or stalls, truncates a request body on its way to the registry, lies in
//! the `Docker-Content-Digest` of an answer, or serves other bytes, and logs every request
//! it handled.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Registry;
use super::http::{IO_TIMEOUT, Request, read_body, read_line_limited, read_request_head};

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
    /// Read the whole request, then neither forward nor answer it: hold the connection
    /// open (until the proxy is dropped, at most [`STALL_MAX`]), as a hung server does.
    Stall,
    /// Forward the request with its body cut to half its length (`Content-Length` made to
    /// match), as a middlebox that loses the end of a body would: the registry sees a
    /// shorter, complete request.
    TruncateBody,
    /// Forward normally, but answer with a `Docker-Content-Digest` that names other bytes
    /// (added if the registry sent none).
    WrongDigest,
}

/// The longest a [`Fault::Stall`] holds a connection.
pub const STALL_MAX: Duration = Duration::from_secs(120);

/// The digest [`Fault::WrongDigest`] puts in `Docker-Content-Digest`: the sha256 of "wrong".
pub const WRONG_DIGEST: &str =
    "sha256:8810ad581e59f2bc3928b261707a71308f7e139eb04820366dc4d5c18d980225";

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
    /// How many requests got a fault so far.
    applied: AtomicUsize,
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
            applied: AtomicUsize::new(0),
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

    /// How many requests a fault was applied to since the proxy started.
    pub fn faults_applied(&self) -> usize {
        self.state.applied.load(Ordering::SeqCst)
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
    if picked.is_some() {
        state.applied.fetch_add(1, Ordering::SeqCst);
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
    let mut body = read_body(reader, req)?;
    match fault {
        Some(Fault::Stall) => {
            let until = std::time::Instant::now() + STALL_MAX;
            while !state.stop.load(Ordering::SeqCst) && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            rec.record(0);
            return Ok(());
        }
        Some(Fault::TruncateBody) => body.truncate(body.len() / 2),
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
    let (status, mut head, mut rest) = upstream;
    if fault == Some(Fault::WrongDigest) {
        head = with_wrong_digest(&head);
    }
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

/// `head` (a response head ending in an empty line) with its `Docker-Content-Digest`
/// replaced by [`WRONG_DIGEST`], or that header added.
fn with_wrong_digest(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("docker-content-digest:"))
        .collect();
    let wrong = format!("Docker-Content-Digest: {WRONG_DIGEST}");
    lines.insert(1, &wrong);
    format!("{}\r\n\r\n", lines.join("\r\n"))
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
