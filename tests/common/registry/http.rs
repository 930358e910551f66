//! A minimal raw HTTP/1.1 client for poking at a registry or the fault proxy directly, and
//! the HTTP/1.1 wire reading the proxy shares with it (lines, chunked bodies, request heads
//! and bodies).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;

/// Socket read and write timeout of the client and the proxy.
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest request or header line read.
const MAX_HEAD: usize = 64 * 1024;

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
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
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

pub(super) fn read_line_limited(r: &mut impl BufRead) -> io::Result<String> {
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

pub(super) fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
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

/// A request head as the proxy reads it.
pub(super) struct Request {
    pub method: String,
    pub target: String,
    /// Headers except Connection, Keep-Alive, Proxy-Connection, Expect,
    /// Transfer-Encoding and Content-Length.
    pub headers: Vec<(String, String)>,
    pub content_length: Option<usize>,
    pub chunked: bool,
    pub expect_continue: bool,
}

pub(super) fn read_request_head(r: &mut impl BufRead) -> io::Result<Request> {
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

pub(super) fn read_body(r: &mut impl BufRead, req: &Request) -> io::Result<Vec<u8>> {
    if req.chunked {
        read_chunked(r)
    } else {
        let mut body = vec![0; req.content_length.unwrap_or(0)];
        r.read_exact(&mut body)?;
        Ok(body)
    }
}
