//! `rko --persistent_worker`, driven as Bazel drives it: length-framed protobuf
//! WorkRequests on stdin, WorkResponses on stdout, one process for many actions. The
//! outputs must be the bytes of `rko ARGS…` run as a process, and nothing a command prints
//! may break the framing. (tests/bazel.rs runs the same worker under real Bazel.)

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out
}

/// A WorkRequest with these arguments (field 1) and an Input (field 2) rko skips.
fn request(args: &[impl AsRef<str>]) -> Vec<u8> {
    let mut m = Vec::new();
    for a in args.iter().map(AsRef::as_ref) {
        m.push(0x0a);
        m.extend(varint(a.len() as u64));
        m.extend(a.as_bytes());
    }
    m.extend([0x12, 6, 0x0a, 1, b'x', 0x12, 1, 1]);
    let mut framed = varint(m.len() as u64);
    framed.extend(m);
    framed
}

#[derive(Debug, Default)]
struct Response {
    exit_code: i64,
    output: String,
}

fn read_varint(r: &mut impl Read) -> u64 {
    let (mut n, mut shift) = (0u64, 0);
    loop {
        let mut b = [0u8];
        r.read_exact(&mut b).expect("a response");
        n |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            return n;
        }
        shift += 7;
    }
}

fn response(r: &mut impl Read) -> Response {
    let len = read_varint(r) as usize;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).unwrap();
    let mut resp = Response::default();
    let mut m = &buf[..];
    while !m.is_empty() {
        let key = read_varint(&mut m);
        match key {
            0x08 => resp.exit_code = read_varint(&mut m) as i64,
            0x12 => {
                let n = read_varint(&mut m) as usize;
                resp.output = String::from_utf8(m[..n].to_vec()).unwrap();
                m = &m[n..];
            }
            0x18 => {
                read_varint(&mut m);
            }
            other => panic!("unexpected field key {other:#x} in {buf:?}"),
        }
    }
    resp
}

struct Worker {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
}

impl Worker {
    fn start(dir: &Path) -> Worker {
        let mut child = Command::new(common::RKO)
            .arg("--persistent_worker")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        Worker {
            child: Some(child),
            stdin,
            stdout,
        }
    }

    fn send(&mut self, args: &[impl AsRef<str>]) -> Response {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(&request(args)).unwrap();
        stdin.flush().unwrap();
        response(&mut self.stdout)
    }

    /// Closes stdin as Bazel does at shutdown; the worker's exit status and stderr.
    fn finish(mut self) -> (bool, String) {
        drop(self.stdin.take());
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn layer_args<'a>(bin: &'a str, out: &'a str, desc: &'a str) -> [&'a str; 12] {
    [
        "layer",
        "binary",
        "--binary",
        bin,
        "--import-path",
        "example.com/w/cmd/app",
        "--platform",
        "linux/amd64",
        "-o",
        out,
        "--descriptor",
        desc,
    ]
}

/// `rko layer kodata` of hello.txt into PREFIX-kodata.{tar.gz,json}.
fn kodata_args(prefix: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "layer",
        "kodata",
        "--import-path",
        "example.com/w/cmd/app",
        "--file",
        "hello.txt=hello.txt",
    ]
    .map(String::from)
    .into();
    for (flag, ext) in [("-o", "tar.gz"), ("--descriptor", "json")] {
        args.push(flag.into());
        args.push(format!("{prefix}-kodata.{ext}"));
    }
    args
}

#[test]
fn a_worker_serves_many_requests_with_the_bytes_a_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::fake_go_binary(&d.join("app"), 62, 300_000);
    std::fs::write(d.join("hello.txt"), "hi\n").unwrap();

    // The reference: the same commands as processes (relative paths, from the same dir).
    let process = |args: &[String]| {
        common::run_ok(common::rko(args).current_dir(d));
    };
    process(&layer_args("app", "p-binary.tar.gz", "p-binary.json").map(String::from));
    process(&kodata_args("p"));

    let mut w = Worker::start(d);
    for round in 0..3 {
        // A usage error: clap's message and exit 2, as from a process.
        let bad = w.send(&["image", "--bogus"]);
        assert_eq!(bad.exit_code, 2, "{bad:?}");
        assert!(
            bad.output.contains("unexpected argument '--bogus'"),
            "{bad:?}"
        );

        // An action that fails: rko's error, exit 1, no output left.
        let missing = w.send(&layer_args("nope", "m.tar.gz", "m.json"));
        assert_eq!(missing.exit_code, 1, "{missing:?}");
        assert!(
            missing.output.starts_with("rko: error: ") && missing.output.contains("nope"),
            "{missing:?}"
        );
        assert!(!d.join("m.tar.gz").exists() && !d.join("m.json").exists());

        // A command that prints to stdout: its text comes back as output, and the
        // responses after it still parse.
        let printed = w.send(&["--version"]);
        assert_eq!(printed.exit_code, 0, "{printed:?}");
        assert!(printed.output.starts_with("rko "), "{printed:?}");

        // The actions: the same bytes as the processes wrote.
        let (blob, desc) = (format!("w{round}.tar.gz"), format!("w{round}.json"));
        let ok = w.send(&layer_args("app", &blob, &desc));
        assert_eq!((ok.exit_code, ok.output.as_str()), (0, ""), "{ok:?}");
        assert_eq!(
            std::fs::read(d.join(&blob)).unwrap(),
            std::fs::read(d.join("p-binary.tar.gz")).unwrap()
        );
        let kodata = w.send(&kodata_args("w"));
        assert_eq!(kodata.exit_code, 0, "{kodata:?}");
        assert_eq!(
            std::fs::read(d.join("w-kodata.tar.gz")).unwrap(),
            std::fs::read(d.join("p-kodata.tar.gz")).unwrap()
        );
        let image = |layer: &str, prefix: &str| {
            vec![
                "image".to_string(),
                "--base".into(),
                "static".into(),
                "--platform".into(),
                "linux/amd64".into(),
                "--layer".into(),
                format!("{prefix}-kodata.json"),
                "--layer".into(),
                layer.to_string(),
                "--digest-out".into(),
                format!("{prefix}-digest"),
            ]
        };
        assert_eq!(w.send(&image(&desc, "w")).exit_code, 0);
        process(&image("p-binary.json", "p"));
        assert_eq!(
            std::fs::read_to_string(d.join("w-digest")).unwrap(),
            std::fs::read_to_string(d.join("p-digest")).unwrap()
        );
    }
    // Bazel closes stdin: the worker ends cleanly, having printed nothing of its own.
    let (ok, stderr) = w.finish();
    assert!(ok, "{stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn a_broken_request_stream_ends_the_worker_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A frame whose message has wire type 3 (a group, which a WorkRequest never holds).
    let mut w = Worker::start(dir.path());
    w.stdin.as_mut().unwrap().write_all(&[1, 0x0b]).unwrap();
    let (ok, stderr) = w.finish();
    assert!(!ok);
    assert!(
        stderr.contains("rko: error: persistent worker: a bad WorkRequest")
            && stderr.contains("wire type 3"),
        "{stderr}"
    );
    // A stream cut inside a frame.
    let mut w = Worker::start(dir.path());
    w.stdin.as_mut().unwrap().write_all(&[9, 0x0a]).unwrap();
    let (ok, stderr) = w.finish();
    assert!(!ok && stderr.contains("persistent worker"), "{stderr}");
}
