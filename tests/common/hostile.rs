//! A scripted fake registry for the hostile cases a real registry cannot be made to play:
//! oversized and endless bodies, stalls, redirects to another host. Real HTTP/1.1 on
//! 127.0.0.1 (plain, keep-alive), one thread per connection; every request is logged with
//! its headers so a test can check what a server received. Bounded in time: every loop
//! gives up at the server's deadline (two minutes) or when the server is dropped, and
//! sockets have read timeouts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case, values as sent.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How to answer a request.
pub enum Reply {
    /// A complete answer with a Content-Length.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A chunked answer that never ends: `chunk` again and again until the client hangs up.
    Endless {
        status: u16,
        headers: Vec<(String, String)>,
        chunk: Vec<u8>,
    },
    /// Accept and read the request, then send nothing until the client gives up.
    Stall,
    /// Promise `length` bytes, send `sent`, then send nothing more.
    StallMidBody {
        status: u16,
        headers: Vec<(String, String)>,
        length: u64,
        sent: Vec<u8>,
    },
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>, content_type: &str) -> Reply {
        Reply::Full {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn status(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }
}

type Script = dyn Fn(&Request) -> Reply + Send + Sync;

/// The fake registry; stopped (and its threads joined) on drop.
pub struct Hostile {
    addr: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Request>>>,
    accept: Option<JoinHandle<()>>,
}

const LIFETIME: Duration = Duration::from_secs(120);

impl Hostile {
    /// Starts a server answering each request with `script`.
    pub fn start(script: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Hostile {
        Self::start_with_self(move |_, r| script(r))
    }

    /// Starts a server answering each request with `script`, which is also given the
    /// server's own `127.0.0.1:PORT` (for a token realm on the same server).
    pub fn start_with_self(
        script: impl Fn(&str, &Request) -> Reply + Send + Sync + 'static,
    ) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let me = addr.clone();
        let script: Arc<Script> = Arc::new(move |r: &Request| script(&me, r));
        let deadline = Instant::now() + LIFETIME;
        let (s, l) = (stop.clone(), log.clone());
        let accept = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (s, l, script) = (s.clone(), l.clone(), script.clone());
                        conns.push(std::thread::spawn(move || {
                            let _ = serve(stream, &*script, &l, &s, deadline);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            s.store(true, Ordering::SeqCst);
            for c in conns {
                let _ = c.join();
            }
        });
        Hostile {
            addr,
            stop,
            log,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.clone()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn over(stop: &AtomicBool, deadline: Instant) -> bool {
    stop.load(Ordering::SeqCst) || Instant::now() >= deadline
}

/// Serves the requests of one connection until the client closes it.
fn serve(
    stream: TcpStream,
    script: &Script,
    log: &Mutex<Vec<Request>>,
    stop: &AtomicBool,
    deadline: Instant,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let Some(req) = read_request(&mut reader, stop, deadline)? else {
            return Ok(());
        };
        log.lock().unwrap().push(req.clone());
        let head = |status: u16, headers: &[(String, String)], extra: &str| {
            let mut h = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (k, v) in headers {
                h.push_str(&format!("{k}: {v}\r\n"));
            }
            h + extra + "\r\n"
        };
        match script(&req) {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let len = format!("Content-Length: {}\r\n", body.len());
                out.write_all(head(status, &headers, &len).as_bytes())?;
                if req.method != "HEAD" {
                    out.write_all(&body)?;
                }
            }
            Reply::Endless {
                status,
                headers,
                chunk,
            } => {
                let te = "Transfer-Encoding: chunked\r\n";
                out.write_all(head(status, &headers, te).as_bytes())?;
                let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                framed.extend_from_slice(&chunk);
                framed.extend_from_slice(b"\r\n");
                while !over(stop, deadline) {
                    // Fails once the client hangs up.
                    out.write_all(&framed)?;
                }
                return Ok(());
            }
            Reply::Stall => return hold(stop, deadline),
            Reply::StallMidBody {
                status,
                headers,
                length,
                sent,
            } => {
                let len = format!("Content-Length: {length}\r\n");
                out.write_all(head(status, &headers, &len).as_bytes())?;
                out.write_all(&sent)?;
                out.flush()?;
                return hold(stop, deadline);
            }
        }
        out.flush()?;
    }
}

fn hold(stop: &AtomicBool, deadline: Instant) -> std::io::Result<()> {
    while !over(stop, deadline) {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Reads one request head (and skips its body); `None` when the client closed the
/// connection, sent something that is not HTTP (a TLS hello), or the server is stopping.
fn read_request(
    r: &mut BufReader<TcpStream>,
    stop: &AtomicBool,
    deadline: Instant,
) -> std::io::Result<Option<Request>> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        if over(stop, deadline) || line.len() > 64 << 10 {
            return Ok(None);
        }
        match r.read_until(b'\n', &mut line) {
            Ok(0) => return Ok(None),
            Ok(_) if !line.ends_with(b"\n") => continue,
            Ok(_) => {
                if lines.is_empty() && line.first() == Some(&0x16) {
                    return Ok(None);
                }
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                line.clear();
                if text.is_empty() {
                    break;
                }
                lines.push(text);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return Ok(None),
        }
    }
    let mut first = lines[0].split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: u64 = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    std::io::copy(&mut r.by_ref().take(len), &mut std::io::sink())?;
    Ok(Some(Request {
        method,
        path,
        headers,
    }))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Status",
    }
}
