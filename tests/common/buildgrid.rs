//! BuildGrid (`bgd`, PyPI `buildgrid`, from the test virtual environment at
//! `$RKO_TEST_PYVENV`) on 127.0.0.1: a REAPI server with CAS, ByteStream and ActionCache
//! over in-memory LRU storage and no authorization, as Bazel's gRPC remote cache
//! (`--remote_cache=grpc://127.0.0.1:PORT`), and a second instance, [`BuildGrid::INSTANCE`],
//! with a CAS of its own (for `rko push --remote-cache grpc://…/INSTANCE`). No execution
//! service: there is no worker here.
//!
//! Each server gets its own configuration and log in a temporary directory. `bgd` runs in a
//! process group of its own (it may start helper processes), which is stopped on drop, even
//! when the test failed. It takes ~15 s to open its port, so [`BuildGrid::start`] polls it
//! (at most [`START_TIMEOUT`] per attempt).

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::registry::free_port;

const START_ATTEMPTS: usize = 3;
/// How long `bgd server start` may take to open its port.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A `bgd server start CONFIG` process group on 127.0.0.1. Stopped (TERM, then KILL) on drop.
pub struct BuildGrid {
    child: Child,
    port: u16,
    dir: TempDir,
}

/// The server's configuration: one unnamed instance with CAS, ByteStream and ActionCache
/// over a 2 GiB in-memory LRU store, and [`BuildGrid::INSTANCE`] with CAS and ByteStream
/// over a 256 MiB one, on `127.0.0.1:PORT` without TLS or authorization.
fn config(port: u16) -> String {
    format!(
        "server:\n\
         \x20 - !channel\n\
         \x20   address: \"127.0.0.1:{port}\"\n\
         \x20   insecure-mode: true\n\
         authorization:\n\
         \x20 method: none\n\
         monitoring:\n\
         \x20 enabled: false\n\
         storages:\n\
         \x20 - !lru-storage &cas\n\
         \x20   size: 2048M\n\
         \x20 - !lru-storage &named\n\
         \x20   size: 256M\n\
         caches:\n\
         \x20 - !lru-action-cache &ac\n\
         \x20   storage: *cas\n\
         \x20   max-cached-refs: 100000\n\
         \x20   allow-updates: true\n\
         \x20   cache-failed-actions: false\n\
         instances:\n\
         \x20 - name: \"\"\n\
         \x20   services:\n\
         \x20     - !cas\n\
         \x20       storage: *cas\n\
         \x20     - !bytestream\n\
         \x20       storage: *cas\n\
         \x20     - !action-cache\n\
         \x20       cache: *ac\n\
         \x20 - name: \"{named}\"\n\
         \x20   services:\n\
         \x20     - !cas\n\
         \x20       storage: *named\n\
         \x20     - !bytestream\n\
         \x20       storage: *named\n",
        named = BuildGrid::INSTANCE
    )
}

/// `bin/bgd` of the test virtual environment.
fn bgd() -> PathBuf {
    super::require::pyvenv_program("bgd").unwrap_or_else(|| {
        panic!(
            "no bgd in ${} (scripts/lib/pyvenv.sh installs buildgrid; \
             start the test with require_tools!(\"pyvenv:bgd\"))",
            super::require::PYVENV_VAR
        )
    })
}

/// Puts files into the CAS of an instance: `python -c PUT ADDRESS INSTANCE FILE...`.
const PUT: &str = r#"
import hashlib, sys, grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as rg
address, instance, files = sys.argv[1], sys.argv[2], sys.argv[3:]
cas = rg.ContentAddressableStorageStub(grpc.insecure_channel(address))
req = re.BatchUpdateBlobsRequest(instance_name=instance)
for f in files:
    data = open(f, "rb").read()
    digest = re.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    req.requests.add(digest=digest, data=data)
for r in cas.BatchUpdateBlobs(req, timeout=60).responses:
    if r.status.code != 0:
        sys.exit(f"{r.digest.hash}: {r.status.code} {r.status.message}")
"#;

impl BuildGrid {
    /// The second instance's name, with a `/` in it as REAPI allows.
    pub const INSTANCE: &'static str = "rko/ci";

    /// Starts BuildGrid on a free loopback port and waits until it accepts connections (up
    /// to [`START_TIMEOUT`] per attempt, [`START_ATTEMPTS`] ports). Panics with its log if it
    /// does not.
    pub fn start() -> BuildGrid {
        let bgd = bgd();
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("rko-buildgrid-")
                .tempdir()
                .unwrap();
            let port = free_port();
            let conf = dir.path().join("buildgrid.yml");
            std::fs::write(&conf, config(port)).unwrap();
            let log = std::fs::File::create(dir.path().join("bgd.log")).unwrap();
            let child = Command::new(&bgd)
                .args(["server", "start"])
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .current_dir(dir.path())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bgd.display()));
            let mut server = BuildGrid { child, port, dir };
            let started = Instant::now();
            while started.elapsed() < START_TIMEOUT {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return server;
                }
                std::thread::sleep(POLL);
            }
            last = format!(
                "after {:.1} s on port {port}:\n{}",
                started.elapsed().as_secs_f64(),
                server.log()
            );
            // Dropping stops the group; the next attempt takes another port.
        }
        panic!("BuildGrid did not open its port ({START_ATTEMPTS} attempts); last {last}");
    }

    /// `grpc://127.0.0.1:PORT`, for Bazel's `--remote_cache`.
    pub fn url(&self) -> String {
        format!("grpc://127.0.0.1:{}", self.port)
    }

    /// `grpc://127.0.0.1:PORT/INSTANCE` (the unnamed instance for `""`), for
    /// `rko push --remote-cache`.
    pub fn instance_url(&self, instance: &str) -> String {
        match instance {
            "" => self.url(),
            i => format!("{}/{i}", self.url()),
        }
    }

    /// Puts `files` into the CAS of `instance` (BatchUpdateBlobs through BuildGrid's own
    /// gRPC stubs).
    pub fn put(&self, instance: &str, files: &[PathBuf]) {
        let python = super::require::pyvenv_program("python")
            .expect("the test virtual environment has python");
        let out = Command::new(python)
            .arg("-c")
            .arg(PUT)
            .arg(format!("127.0.0.1:{}", self.port))
            .arg(instance)
            .args(files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "BatchUpdateBlobs to BuildGrid failed:\n{}\n--- bgd log\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server printed so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bgd.log")).unwrap_or_default()
    }

    /// The blobs of `blobs` (sha256 hex, size) the CAS does not hold, each read back whole
    /// with a ByteStream Read of `blobs/<hex>/<size>` through BuildGrid's own gRPC stubs (one
    /// Python process for all). A blob read back with other bytes fails the test.
    pub fn missing_blobs(&self, blobs: &[(String, u64)]) -> Vec<String> {
        let python = super::require::pyvenv_program("python")
            .expect("the test virtual environment has python");
        let script = "\
import sys, hashlib, grpc
from buildgrid._protos.google.bytestream import bytestream_pb2, bytestream_pb2_grpc
stub = bytestream_pb2_grpc.ByteStreamStub(grpc.insecure_channel(sys.argv[1]))
for line in sys.stdin.read().splitlines():
    if not line:
        continue
    hex_, size = line.split()
    h, n = hashlib.sha256(), 0
    try:
        for r in stub.Read(bytestream_pb2.ReadRequest(resource_name=f'blobs/{hex_}/{size}'), timeout=60):
            h.update(r.data)
            n += len(r.data)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            raise
        print(hex_)
        continue
    if (h.hexdigest(), n) != (hex_, int(size)):
        sys.exit(f'blobs/{hex_}/{size} read back as sha256:{h.hexdigest()} of {n} bytes')
";
        let mut child = Command::new(python)
            .arg("-c")
            .arg(script)
            .arg(format!("127.0.0.1:{}", self.port))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let list: String = blobs.iter().map(|(h, n)| format!("{h} {n}\n")).collect();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), list.as_bytes()).unwrap();
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ByteStream reads from BuildGrid failed ({}):\n{}\n--- bgd log\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    }
}

impl Drop for BuildGrid {
    fn drop(&mut self) {
        // The whole group: TERM first, KILL if it has not exited within STOP_TIMEOUT.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}
