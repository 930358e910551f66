//! A minimal gRPC client for the two calls a lazy push makes to a REAPI cache: CAS
//! `FindMissingBlobs` (does the cache have a blob?) and ByteStream `Read` (stream it).
//!
//! HTTP/2 is the `h2` crate on a small tokio current-thread runtime, on a thread of its own
//! per call, so the rest of rko stays synchronous: the call's response messages come over a
//! bounded channel to [`Messages::next`], and the runtime reads no further from the server
//! until the consumer (the registry upload) has taken them, so a blob is never held whole in
//! memory. `grpcs://` is TLS with ALPN `h2` (tokio-rustls, the same roots and certs.d as the
//! registries). The two tiny request and response messages are encoded by hand
//! ([`proto`]): no code generation, no protobuf runtime.

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// Where the cache is: `grpc[s]://HOST[:PORT][/INSTANCE]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// REAPI instance name: everything after the authority, may hold `/`; often empty.
    pub instance: String,
}

impl Target {
    /// Parses `grpc://…` or `grpcs://…`; `None` for another scheme.
    pub fn parse(url: &str) -> Option<Result<Target, String>> {
        let (tls, rest) = match url.split_once("://") {
            Some(("grpc", r)) => (false, r),
            Some(("grpcs", r)) => (true, r),
            _ => return None,
        };
        let (authority, instance) = rest.split_once('/').unwrap_or((rest, ""));
        let bad = |why: &str| Some(Err(why.to_string()));
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((h, "")) => (h, None),
                Some((h, p)) if p.starts_with(':') => (h, Some(&p[1..])),
                _ => return bad("its [IPv6] address is malformed"),
            },
            None => match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        let port = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return bad("the port is not a number from 1 to 65535"),
            },
            None if tls => 443,
            None => 80,
        };
        if host.is_empty() {
            return bad("it names no host");
        }
        Some(Ok(Target {
            tls,
            host: host.to_string(),
            port,
            instance: instance.trim_matches('/').to_string(),
        }))
    }

    /// `host:port` as the `:authority` of requests and for certs.d.
    pub fn authority(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcError {
    /// The server answered with a non-OK `grpc-status`.
    Status { code: u32, message: String },
    /// No usable answer: connection, TLS, HTTP/2, a malformed response, a timeout.
    Transport(String),
}

pub const NOT_FOUND: u32 = 5;
pub const PERMISSION_DENIED: u32 = 7;
pub const UNAUTHENTICATED: u32 = 16;

/// The name of a gRPC status code.
pub fn code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(code as usize).copied().unwrap_or("UNKNOWN_CODE")
}

/// One unary or server-streaming call.
pub struct Call {
    pub target: Target,
    /// `/package.Service/Method`.
    pub method: &'static str,
    /// The request message, protobuf-encoded.
    pub request: Vec<u8>,
    /// Metadata (`--remote-header`), names lower-cased.
    pub metadata: Vec<(String, String)>,
    /// For `grpcs://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// How long the server may send nothing (connecting included) before the call fails.
    pub idle: Duration,
}

/// The largest response message accepted (a ByteStream chunk is usually 64 KiB to 4 MiB).
const MAX_MESSAGE: usize = 64 << 20;
/// Response messages waiting for the consumer.
const QUEUED: usize = 4;
/// The HTTP/2 flow-control window of a call (stream and connection).
const WINDOW: u32 = 4 << 20;

/// A call's response messages as they arrive; dropping it cancels the call.
pub struct Messages {
    rx: mpsc::Receiver<Result<Bytes, GrpcError>>,
}

impl Messages {
    /// The next message; `None` once the server ended the call with status OK.
    pub fn next(&mut self) -> Option<Result<Bytes, GrpcError>> {
        self.rx.blocking_recv()
    }
}

/// Starts `call` and waits for the server's response headers: a call the server refuses
/// at once (the usual way of NOT_FOUND) fails here, before anything is consumed.
pub fn start(call: Call) -> Result<Messages, GrpcError> {
    let (tx, rx) = mpsc::channel(QUEUED);
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("rko-grpc".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(GrpcError::Transport(format!(
                        "cannot start the gRPC runtime: {e}"
                    ))));
                    return;
                }
            };
            rt.block_on(run(call, tx, ready_tx));
        })
        .map_err(|e| GrpcError::Transport(format!("cannot start a gRPC thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Messages { rx }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(GrpcError::Transport("the gRPC thread ended early".into())),
    }
}

type Ready = std::sync::mpsc::SyncSender<Result<(), GrpcError>>;

async fn run(call: Call, tx: mpsc::Sender<Result<Bytes, GrpcError>>, ready: Ready) {
    // Until the response headers are in, errors go to `ready`; after, into the stream.
    let mut ready = Some(ready);
    let result = call_over_tcp(&call, &tx, &mut ready).await;
    if let Err(e) = result {
        match ready.take() {
            Some(r) => drop(r.send(Err(e))),
            None => drop(tx.send(Err(e)).await),
        }
    }
}

async fn timed<T, E: std::fmt::Display>(
    idle: Duration,
    what: &str,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, GrpcError> {
    match tokio::time::timeout(idle, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(GrpcError::Transport(format!("{what}: {e}"))),
        Err(_) => Err(GrpcError::Transport(format!(
            "{what}: nothing for {} s",
            idle.as_secs()
        ))),
    }
}

async fn call_over_tcp(
    call: &Call,
    tx: &mpsc::Sender<Result<Bytes, GrpcError>>,
    ready: &mut Option<Ready>,
) -> Result<(), GrpcError> {
    let t = &call.target;
    let connect = tokio::net::TcpStream::connect((t.host.as_str(), t.port));
    let tcp = timed(
        call.idle.min(Duration::from_secs(30)),
        "connecting",
        connect,
    )
    .await?;
    let _ = tcp.set_nodelay(true);
    match &call.tls {
        None => over(tcp, call, tx, ready).await,
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from(t.host.clone())
                .map_err(|e| GrpcError::Transport(format!("TLS server name {}: {e}", t.host)))?;
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let tls = timed(call.idle, "TLS handshake", connector.connect(name, tcp)).await?;
            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err(GrpcError::Transport(
                    "the server did not agree to HTTP/2 (ALPN h2) over TLS, which gRPC needs"
                        .into(),
                ));
            }
            over(tls, call, tx, ready).await
        }
    }
}

async fn over<IO>(
    io: IO,
    call: &Call,
    tx: &mpsc::Sender<Result<Bytes, GrpcError>>,
    ready: &mut Option<Ready>,
) -> Result<(), GrpcError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let idle = call.idle;
    // HTTP/2's default 64 KiB window would allow one 64 KiB per round trip: a far cache
    // could not fill the upload. WINDOW bytes in flight keep it moving; they are all the
    // connection buffers, besides the QUEUED messages.
    let handshake = h2::client::Builder::new()
        .initial_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        .handshake(io);
    let (client, conn) = timed(idle, "HTTP/2 handshake", handshake).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = timed(idle, "HTTP/2 connection", client.ready()).await?;
    let scheme = if call.target.tls { "https" } else { "http" };
    let uri = format!("{scheme}://{}{}", call.target.authority(), call.method);
    let mut req = http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", concat!("rko/", env!("CARGO_PKG_VERSION")));
    for (name, value) in &call.metadata {
        req = req.header(name.as_str(), value.as_str());
    }
    // The metadata was checked when the cache was parsed; a failure names no value.
    let req = req
        .body(())
        .map_err(|_| GrpcError::Transport("a --remote-header is not valid gRPC metadata".into()))?;
    let (response, mut send) = client
        .send_request(req, false)
        .map_err(|e| GrpcError::Transport(format!("sending the request: {e}")))?;
    let mut framed = Vec::with_capacity(5 + call.request.len());
    framed.push(0);
    framed.extend_from_slice(&(call.request.len() as u32).to_be_bytes());
    framed.extend_from_slice(&call.request);
    send.send_data(Bytes::from(framed), true)
        .map_err(|e| GrpcError::Transport(format!("sending the request: {e}")))?;
    let response = timed(idle, "waiting for the answer", response).await?;
    let (parts, mut body) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        return Err(GrpcError::Transport(format!(
            "the server answered HTTP {} instead of a gRPC response",
            parts.status
        )));
    }
    // Trailers-only: the status is in the headers and there is no body.
    if let Some(status) = status_of(&parts.headers) {
        status?;
        if let Some(r) = ready.take() {
            let _ = r.send(Ok(()));
        }
        return Ok(());
    }
    if let Some(r) = ready.take() {
        let _ = r.send(Ok(()));
    }
    let mut buf = BytesMut::new();
    loop {
        let data = timed(idle, "reading the answer", async {
            body.data().await.transpose()
        });
        // A consumer that went away (a failed upload) ends the call at once.
        let Some(chunk) = or_closed(tx, data).await.transpose()? else {
            return Ok(());
        };
        let Some(chunk) = chunk else {
            break;
        };
        let _ = body.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
        while let Some(msg) = next_message(&mut buf)? {
            if tx.send(Ok(msg)).await.is_err() {
                return Ok(()); // the consumer is gone: dropping `body` cancels the call
            }
        }
    }
    if !buf.is_empty() {
        return Err(GrpcError::Transport(
            "the answer ended inside a message".into(),
        ));
    }
    let trailers = timed(idle, "reading the answer's trailers", body.trailers()).await?;
    match trailers.as_ref().and_then(status_of) {
        Some(status) => status,
        None => Err(GrpcError::Transport(
            "the answer ended without a grpc-status".into(),
        )),
    }
}

/// `f`'s output, or `None` as soon as the receiver of `tx` is dropped.
async fn or_closed<T, M>(tx: &mpsc::Sender<M>, f: impl Future<Output = T>) -> Option<T> {
    let mut f = std::pin::pin!(f);
    let mut closed = std::pin::pin!(tx.closed());
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if closed.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// A complete length-prefixed message from the front of `buf`, if there is one.
fn next_message(buf: &mut BytesMut) -> Result<Option<Bytes>, GrpcError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    if buf[0] != 0 {
        return Err(GrpcError::Transport(
            "the server sent a compressed message, which rko did not ask for".into(),
        ));
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > MAX_MESSAGE {
        return Err(GrpcError::Transport(format!(
            "the server sent a message of {len} bytes (at most {MAX_MESSAGE} are taken)"
        )));
    }
    if buf.len() < 5 + len {
        return Ok(None);
    }
    buf.advance(5);
    Ok(Some(buf.split_to(len).freeze()))
}

/// `grpc-status` (and `grpc-message`) of a header block; `None` without one.
fn status_of(h: &http::HeaderMap) -> Option<Result<(), GrpcError>> {
    let code = h.get("grpc-status")?;
    let code = code
        .to_str()
        .ok()
        .and_then(|c| c.trim().parse::<u32>().ok());
    let message = h
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Some(match code {
        Some(0) => Ok(()),
        Some(code) => Err(GrpcError::Status { code, message }),
        None => Err(GrpcError::Transport(
            "the answer's grpc-status is not a number".into(),
        )),
    })
}

/// `grpc-message` is percent-encoded UTF-8.
fn percent_decode(b: &[u8]) -> String {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The protobuf messages, encoded and decoded by hand: REAPI's `Digest`,
/// `FindMissingBlobsRequest`/`Response` and ByteStream's `ReadRequest`/`ReadResponse`.
pub mod proto {
    use bytes::{Buf, Bytes};

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn bytes_field(out: &mut Vec<u8>, field: u64, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        varint(out, field << 3 | 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }

    fn varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
        if v != 0 {
            varint(out, field << 3);
            varint(out, v);
        }
    }

    /// `ReadRequest{resource_name = 1, read_offset = 2, read_limit = 3}`, from the start
    /// with no limit.
    pub fn read_request(resource_name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        bytes_field(&mut out, 1, resource_name.as_bytes());
        out
    }

    /// `Digest{hash = 1, size_bytes = 2}`.
    fn digest(hex: &str, size: u64) -> Vec<u8> {
        let mut out = Vec::new();
        bytes_field(&mut out, 1, hex.as_bytes());
        varint_field(&mut out, 2, size);
        out
    }

    /// `FindMissingBlobsRequest{instance_name = 1, blob_digests = 2}` for one blob.
    pub fn find_missing_request(instance: &str, hex: &str, size: u64) -> Vec<u8> {
        let mut out = Vec::new();
        bytes_field(&mut out, 1, instance.as_bytes());
        let d = digest(hex, size);
        varint(&mut out, 2 << 3 | 2);
        varint(&mut out, d.len() as u64);
        out.extend_from_slice(&d);
        out
    }

    /// The length-delimited fields numbered `field` of `msg`, skipping the others.
    fn fields(msg: &Bytes, field: u64) -> Result<Vec<Bytes>, String> {
        let mut m = msg.clone();
        let mut found = Vec::new();
        let read_varint = |m: &mut Bytes| -> Result<u64, String> {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                if !m.has_remaining() {
                    return Err("a truncated varint".into());
                }
                let b = m.get_u8();
                v |= u64::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    return Ok(v);
                }
            }
            Err("a varint longer than 64 bits".into())
        };
        while m.has_remaining() {
            let key = read_varint(&mut m)?;
            let skip = match key & 7 {
                0 => {
                    read_varint(&mut m)?;
                    0
                }
                1 => 8,
                5 => 4,
                2 => {
                    let len = read_varint(&mut m)? as usize;
                    if len > m.remaining() {
                        return Err("a field longer than its message".into());
                    }
                    if key >> 3 == field {
                        found.push(m.split_to(len));
                        0
                    } else {
                        len
                    }
                }
                t => return Err(format!("wire type {t}, which these messages never hold")),
            };
            if skip > m.remaining() {
                return Err("a field longer than its message".into());
            }
            m.advance(skip);
        }
        Ok(found)
    }

    /// `ReadResponse.data` (field 10); empty when absent.
    pub fn read_response_data(msg: &Bytes) -> Result<Bytes, String> {
        Ok(fields(msg, 10)?.pop().unwrap_or_default())
    }

    /// The hashes of `FindMissingBlobsResponse.missing_blob_digests` (field 2).
    pub fn missing_hashes(msg: &Bytes) -> Result<Vec<String>, String> {
        fields(msg, 2)?
            .iter()
            .map(|d| {
                let hash = fields(d, 1)?.pop().unwrap_or_default();
                Ok(String::from_utf8_lossy(&hash).into_owned())
            })
            .collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn messages_round_trip_as_protobuf_encodes_them() {
            // protoc --encode=google.bytestream.ReadRequest: field 1, length 15.
            assert_eq!(read_request("blobs/ab/3"), b"\x0a\x0ablobs/ab/3");
            let r = find_missing_request("ci", "ab", 300);
            assert_eq!(r, b"\x0a\x02ci\x12\x07\x0a\x02ab\x10\xac\x02");
            // ReadResponse with an unknown varint field before data (field 10).
            let msg = Bytes::from_static(b"\x08\x96\x01\x52\x03xyz");
            assert_eq!(read_response_data(&msg).unwrap(), &b"xyz"[..]);
            assert_eq!(read_response_data(&Bytes::new()).unwrap(), &b""[..]);
            let resp = Bytes::from(
                [
                    &b"\x12\x07"[..],
                    &digest("ab", 300)[..],
                    b"\x12\x04\x0a\x02cd",
                ]
                .concat(),
            );
            assert_eq!(missing_hashes(&resp).unwrap(), ["ab", "cd"]);
            assert!(read_response_data(&Bytes::from_static(b"\x52\x09ab")).is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_messages() {
        let t = Target::parse("grpc://127.0.0.1:8980").unwrap().unwrap();
        assert_eq!(
            t,
            Target {
                tls: false,
                host: "127.0.0.1".into(),
                port: 8980,
                instance: String::new()
            }
        );
        let t = Target::parse("grpcs://cache.example/main/ci")
            .unwrap()
            .unwrap();
        assert_eq!((t.port, t.instance.as_str()), (443, "main/ci"));
        assert_eq!(t.authority(), "cache.example:443");
        let t = Target::parse("grpc://[::1]:9092").unwrap().unwrap();
        assert_eq!(
            (t.host.as_str(), t.authority()),
            ("::1", "[::1]:9092".into())
        );
        assert!(Target::parse("http://c").is_none());
        assert!(Target::parse("grpc://c:x").unwrap().is_err());
        assert!(Target::parse("grpc://:1").unwrap().is_err());

        let mut buf = BytesMut::from(&b"\x00\x00\x00\x00\x02ab\x00\x00"[..]);
        assert_eq!(next_message(&mut buf).unwrap().unwrap(), &b"ab"[..]);
        assert_eq!(next_message(&mut buf).unwrap(), None);
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", "5".parse().unwrap());
        h.insert("grpc-message", "no%20such blob".parse().unwrap());
        assert_eq!(
            status_of(&h),
            Some(Err(GrpcError::Status {
                code: 5,
                message: "no such blob".into()
            }))
        );
        assert_eq!(code_name(16), "UNAUTHENTICATED");
    }
}
