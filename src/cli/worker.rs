//! `rko --persistent_worker`: Bazel's persistent worker protocol (singleplex, protobuf), so
//! a build of many small rko actions pays for one process start per worker instead of one
//! per action, and no sandbox set-up.
//!
//! Bazel starts `rko --persistent_worker` in the execution root and sends `WorkRequest`s on
//! stdin, each framed by its length as a varint; rko answers each with a `WorkResponse` on
//! stdout the same way. A request's `arguments` are the action's command line after the
//! program name (Bazel has already read the `@FILE` parameter file into them). Each request
//! runs exactly as `rko ARGUMENTS…` would in its own process: the same parser, the same
//! library call, the same all-or-nothing outputs. What it prints (errors, warnings, stdout)
//! is captured into the response's `output`, which Bazel shows as the action's output;
//! the real stdout carries nothing but responses.
//!
//! A request that panics gets exit code 1 and the panic message, and then the worker exits
//! (Bazel starts a fresh one), so no state a panic interrupted is reused. rko keeps no
//! per-request state: the only process-wide value is the embedded base's layer, computed
//! once and the same every time.
//!
//! The messages (bazelbuild/bazel src/main/protobuf/worker_protocol.proto):
//! `WorkRequest { repeated string arguments = 1; repeated Input inputs = 2; int32
//! request_id = 3; bool cancel = 4; int32 verbosity = 5; string sandbox_dir = 6; }` and
//! `WorkResponse { int32 exit_code = 1; string output = 2; int32 request_id = 3; bool
//! was_cancelled = 4; }`. Fields rko does not use are skipped by wire type.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;

/// A request larger than this is refused: Bazel's biggest (100,000 kodata files) are a few
/// MiB.
const MAX_MESSAGE: u64 = 256 << 20;

/// The fields of a `WorkRequest` rko reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WorkRequest {
    pub arguments: Vec<String>,
    pub request_id: i32,
}

/// A malformed message: what was wrong, at which byte.
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError(String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn varint(buf: &[u8], at: &mut usize) -> Result<u64, DecodeError> {
    let start = *at;
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&b) = buf.get(*at) else {
            return Err(DecodeError(format!(
                "a varint at byte {start} runs past the end of the {}-byte message",
                buf.len()
            )));
        };
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError(format!(
        "a varint at byte {start} is longer than 10 bytes"
    )))
}

fn skip(buf: &[u8], at: &mut usize, n: u64, what: &str) -> Result<(), DecodeError> {
    let end = usize::try_from(n)
        .ok()
        .and_then(|n| at.checked_add(n))
        .filter(|&end| end <= buf.len())
        .ok_or_else(|| {
            DecodeError(format!(
                "{what} at byte {at} claims {n} bytes; the message has {} left",
                buf.len() - *at
            ))
        })?;
    *at = end;
    Ok(())
}

impl WorkRequest {
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut req = WorkRequest::default();
        let mut at = 0;
        while at < buf.len() {
            let key_at = at;
            let key = varint(buf, &mut at)?;
            let (field, wire) = (key >> 3, key & 7);
            match wire {
                0 => {
                    let v = varint(buf, &mut at)?;
                    if field == 3 {
                        // int32: negative values are sign-extended to 64 bits on the wire.
                        req.request_id = v as i64 as i32;
                    }
                }
                1 => skip(buf, &mut at, 8, "a fixed64 field")?,
                2 => {
                    let len = varint(buf, &mut at)?;
                    let start = at;
                    skip(buf, &mut at, len, "a length-delimited field")?;
                    if field == 1 {
                        let arg = std::str::from_utf8(&buf[start..at]).map_err(|e| {
                            DecodeError(format!(
                                "argument {} (at byte {start}) is not UTF-8: {e}",
                                req.arguments.len() + 1
                            ))
                        })?;
                        req.arguments.push(arg.to_string());
                    }
                }
                5 => skip(buf, &mut at, 4, "a fixed32 field")?,
                other => {
                    return Err(DecodeError(format!(
                        "field {field} at byte {key_at} has wire type {other}; a WorkRequest \
                         has only types 0, 1, 2 and 5"
                    )));
                }
            }
        }
        Ok(req)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A `WorkResponse`, framed by its length. Zero values are left out, as protobuf does.
pub fn encode_response(exit_code: i32, output: &str, request_id: i32) -> Vec<u8> {
    let mut m = Vec::with_capacity(output.len() + 16);
    if exit_code != 0 {
        put_varint(&mut m, 1 << 3);
        put_varint(&mut m, exit_code as i64 as u64);
    }
    if !output.is_empty() {
        put_varint(&mut m, (2 << 3) | 2);
        put_varint(&mut m, output.len() as u64);
        m.extend_from_slice(output.as_bytes());
    }
    if request_id != 0 {
        put_varint(&mut m, 3 << 3);
        put_varint(&mut m, request_id as i64 as u64);
    }
    let mut framed = Vec::with_capacity(m.len() + 5);
    put_varint(&mut framed, m.len() as u64);
    framed.extend_from_slice(&m);
    framed
}

/// The next length-framed message, or None at a clean end of input (Bazel closed stdin).
pub fn read_message(input: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut len = 0u64;
    let mut shift = 0;
    loop {
        let mut b = [0u8];
        if input.read(&mut b)? == 0 {
            if shift == 0 {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the input ended inside a message's length",
            ));
        }
        len |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift >= 64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a message length is longer than 10 bytes",
            ));
        }
    }
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a WorkRequest of {len} bytes; at most {MAX_MESSAGE} are accepted"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    input.read_exact(&mut buf)?;
    Ok(Some(buf))
}

fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: dup of a descriptor this process holds; the new one is owned here.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: both descriptors are open; `to` is 1 or 2, which this process owns.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// While alive, fds 1 and 2 write into a capture file; dropped, they point at `restore`.
struct Capture<'a> {
    file: File,
    restore: &'a OwnedFd,
}

impl<'a> Capture<'a> {
    fn start(restore: &'a OwnedFd) -> io::Result<Self> {
        let file = tempfile::tempfile()?;
        dup2(file.as_raw_fd(), 1)?;
        dup2(file.as_raw_fd(), 2)?;
        Ok(Capture { file, restore })
    }

    /// Stops capturing and gives what was written.
    fn finish(mut self) -> io::Result<String> {
        let _ = io::stdout().flush();
        self.point_back()?;
        let mut text = Vec::new();
        self.file.rewind()?;
        self.file.read_to_end(&mut text)?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    fn point_back(&self) -> io::Result<()> {
        dup2(self.restore.as_raw_fd(), 1)?;
        dup2(self.restore.as_raw_fd(), 2)
    }
}

impl Drop for Capture<'_> {
    fn drop(&mut self) {
        let _ = self.point_back();
    }
}

/// Serves requests until Bazel closes stdin. Exit status 0 then; 1 when the protocol
/// breaks or a request panicked (after answering it).
pub fn serve() -> ExitCode {
    match serve_requests() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rko: error: persistent worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve_requests() -> io::Result<ExitCode> {
    // Responses go to the real stdout alone: fd 1 is pointed at stderr (between requests)
    // or at a request's capture, so nothing else printed can break the framing.
    let mut responses = File::from(dup(1)?);
    let stderr = dup(2)?;
    dup2(stderr.as_raw_fd(), 1)?;
    let stdin = io::stdin();
    let mut input = stdin.lock();
    while let Some(msg) = read_message(&mut input)? {
        let req = WorkRequest::decode(&msg).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a bad WorkRequest: {e}"),
            )
        })?;
        let capture = Capture::start(&stderr)?;
        let args: Vec<OsString> = std::iter::once(OsString::from("rko"))
            .chain(req.arguments.into_iter().map(OsString::from))
            .collect();
        let result = std::panic::catch_unwind(|| super::run_args(args));
        let output = capture.finish()?;
        let (code, panicked) = match result {
            Ok(code) => (i32::from(code), false),
            Err(_) => (1, true),
        };
        responses.write_all(&encode_response(code, &output, req.request_id))?;
        responses.flush()?;
        if panicked {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WorkRequest as protobuf encodes it, written out by hand: arguments "layer" and
    /// "a=b", one Input {path "x", digest "\x01"} (field 2, skipped), request_id 7, verbosity
    /// 0 left out, sandbox_dir "s" (skipped).
    const REQUEST: &[u8] = &[
        0x0a, 5, b'l', b'a', b'y', b'e', b'r', // arguments = "layer"
        0x0a, 3, b'a', b'=', b'b', // arguments = "a=b"
        0x12, 6, 0x0a, 1, b'x', 0x12, 1, 1, // inputs = {path: "x", digest: "\x01"}
        0x18, 7, // request_id = 7
        0x32, 1, b's', // sandbox_dir = "s"
    ];

    #[test]
    fn decodes_arguments_and_request_id_skipping_the_rest() {
        let req = WorkRequest::decode(REQUEST).unwrap();
        assert_eq!(req.arguments, ["layer", "a=b"]);
        assert_eq!(req.request_id, 7);
        // Singleplex Bazel sends no request_id: it is 0.
        let req = WorkRequest::decode(&REQUEST[..12]).unwrap();
        assert_eq!(req.request_id, 0);
        // A negative int32 is ten bytes on the wire.
        let mut neg = vec![0x18];
        put_varint(&mut neg, -2i64 as u64);
        assert_eq!(neg.len(), 11);
        assert_eq!(WorkRequest::decode(&neg).unwrap().request_id, -2);
    }

    #[test]
    fn malformed_requests_say_what_and_where() {
        let e = WorkRequest::decode(&REQUEST[..4]).unwrap_err();
        assert!(e.0.contains("claims 5 bytes"), "{e}");
        let e = WorkRequest::decode(&[0x0a, 1, 0xff]).unwrap_err();
        assert!(e.0.contains("not UTF-8"), "{e}");
        let e = WorkRequest::decode(&[0x0b]).unwrap_err();
        assert!(e.0.contains("wire type 3"), "{e}");
        let e = WorkRequest::decode(&[0x18, 0x80]).unwrap_err();
        assert!(e.0.contains("runs past the end"), "{e}");
    }

    #[test]
    fn responses_are_length_framed_and_leave_out_zero_fields() {
        assert_eq!(encode_response(0, "", 0), [0]);
        assert_eq!(
            encode_response(2, "no", 5),
            [8, 0x08, 2, 0x12, 2, b'n', b'o', 0x18, 5]
        );
        let big = "x".repeat(200);
        let r = encode_response(1, &big, 0);
        // Length 2 + 1 + 2 + 200 = 205: a two-byte varint.
        assert_eq!(&r[..2], &[0xcd, 0x01]);
        assert_eq!(r.len(), 2 + 205);
    }

    #[test]
    fn messages_are_read_by_their_length_until_a_clean_end() {
        let mut stream = Vec::new();
        put_varint(&mut stream, REQUEST.len() as u64);
        stream.extend_from_slice(REQUEST);
        stream.extend_from_slice(&[2, 0x18, 9]);
        let mut r = io::BufReader::new(&stream[..]);
        assert_eq!(read_message(&mut r).unwrap().unwrap(), REQUEST);
        assert_eq!(read_message(&mut r).unwrap().unwrap(), [0x18, 9]);
        assert!(read_message(&mut r).unwrap().is_none());
        let e = read_message(&mut io::BufReader::new(&[5u8, 1][..])).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let mut huge = Vec::new();
        put_varint(&mut huge, MAX_MESSAGE + 1);
        let e = read_message(&mut io::BufReader::new(&huge[..])).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
    }
}
