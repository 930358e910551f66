//! A loopback gRPC stand-in for a REAPI remote cache (Python with grpcio and BuildGrid's
//! REAPI stubs, from the test virtual environment), for what BuildGrid cannot show: the
//! metadata a client sends, refused credentials, streams cut short or corrupted, and TLS.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::require::pyvenv_program;

/// A loopback gRPC stand-in for a REAPI cache (Python, grpcio): CAS FindMissingBlobs and
/// ByteStream Read of the files in `blobs/` (named by their sha256), in 7000-byte chunks.
/// It logs every call's metadata to `calls.jsonl`, answers UNAUTHENTICATED unless the
/// metadata holds `authorization: Bearer secret-xyz`, and misbehaves as `mode` says:
/// `short` ends a Read 10 bytes early, `corrupt` flips a bit of the first byte. With
/// [`StubCache::start_tls`] it serves TLS (ALPN h2) with a self-signed certificate for
/// 127.0.0.1.
pub struct StubCache {
    pub port: u16,
    /// The CA of a TLS stub's certificate, for `--ca-file`.
    pub cert: Option<PathBuf>,
    child: Child,
    dir: TempDir,
}

const STUB: &str = r#"
import json, os, sys, grpc
from concurrent import futures
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re
from buildgrid._protos.google.bytestream import bytestream_pb2 as bs
d = sys.argv[1]
blobs = os.path.join(d, "blobs")

def allowed(ctx, call):
    md = [[m.key, m.value] for m in ctx.invocation_metadata()]
    with open(os.path.join(d, "calls.jsonl"), "a") as f:
        f.write(json.dumps({"call": call, "metadata": md}) + "\n")
    if ["authorization", "Bearer secret-xyz"] not in md:
        ctx.abort(grpc.StatusCode.UNAUTHENTICATED, "no valid token")

def find_missing(req, ctx):
    allowed(ctx, "FindMissingBlobs")
    gone = [x for x in req.blob_digests if not os.path.exists(os.path.join(blobs, x.hash))]
    return re.FindMissingBlobsResponse(missing_blob_digests=gone)

def read(req, ctx):
    allowed(ctx, "Read " + req.resource_name)
    p = os.path.join(blobs, req.resource_name.split("/")[-2])
    if not os.path.exists(p):
        ctx.abort(grpc.StatusCode.NOT_FOUND, "no such blob")
    data = open(p, "rb").read()
    mode = open(os.path.join(d, "mode")).read().strip()
    if mode == "short":
        data = data[:-10]
    elif mode == "corrupt":
        data = bytes([data[0] ^ 1]) + data[1:]
    for i in range(0, len(data), 7000):
        yield bs.ReadResponse(data=data[i:i + 7000])

server = grpc.server(futures.ThreadPoolExecutor(4))
server.add_generic_rpc_handlers((
    grpc.method_handlers_generic_handler(
        "build.bazel.remote.execution.v2.ContentAddressableStorage",
        {"FindMissingBlobs": grpc.unary_unary_rpc_method_handler(
            find_missing, request_deserializer=re.FindMissingBlobsRequest.FromString,
            response_serializer=re.FindMissingBlobsResponse.SerializeToString)}),
    grpc.method_handlers_generic_handler(
        "google.bytestream.ByteStream",
        {"Read": grpc.unary_stream_rpc_method_handler(
            read, request_deserializer=bs.ReadRequest.FromString,
            response_serializer=bs.ReadResponse.SerializeToString)}),
))
if len(sys.argv) > 2:
    key, cert = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
else:
    port = server.add_insecure_port("127.0.0.1:0")
server.start()
with open(os.path.join(d, "port.tmp"), "w") as f:
    f.write(str(port))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
server.wait_for_termination()
"#;

impl StubCache {
    pub const TOKEN: &'static str = "Bearer secret-xyz";

    pub fn start() -> StubCache {
        Self::spawn(false)
    }

    /// A stub serving `grpcs://`.
    pub fn start_tls() -> StubCache {
        Self::spawn(true)
    }

    fn spawn(tls: bool) -> StubCache {
        let python = pyvenv_program("python").expect("require_tools!(\"pyvenv:bgd\") first");
        let dir = tempfile::Builder::new()
            .prefix("rko-grpc-stub-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("mode"), "ok").unwrap();
        let log = std::fs::File::create(dir.path().join("stub.log")).unwrap();
        let mut cmd = Command::new(python);
        cmd.arg("-c").arg(STUB).arg(dir.path());
        let cert = tls.then(|| {
            // A CA and a server certificate it signs (rustls refuses a CA certificate used
            // as the server's own).
            let d = dir.path();
            let ossl = |args: &str| {
                super::run_ok(Command::new("openssl").current_dir(d).args(args.split(' ')))
            };
            ossl("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=rko-test-ca -keyout ca.key -out ca.pem");
            ossl("req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out server.csr");
            std::fs::write(
                d.join("server.ext"),
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
                 extendedKeyUsage=serverAuth\n",
            )
            .unwrap();
            ossl("x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out cert.pem");
            cmd.arg(d.join("key.pem")).arg(d.join("cert.pem"));
            d.join("ca.pem")
        });
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut stub = StubCache {
            port: 0,
            cert,
            child,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = stub.child.try_wait() {
                panic!("the gRPC stub exited with {status}:\n{}", stub.log());
            }
            if let Ok(p) = std::fs::read_to_string(stub.dir.path().join("port")) {
                stub.port = p.trim().parse().unwrap();
                return stub;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the gRPC stub did not start within 60 s:\n{}", stub.log());
    }

    pub fn url(&self) -> String {
        let scheme = if self.cert.is_some() { "grpcs" } else { "grpc" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Serves `file` as the blob `digest` (`sha256:…`).
    pub fn put(&self, digest: &str, file: &Path) {
        let hex = digest.trim_start_matches("sha256:");
        std::fs::copy(file, self.dir.path().join("blobs").join(hex)).unwrap();
    }

    pub fn set_mode(&self, mode: &str) {
        std::fs::write(self.dir.path().join("mode"), mode).unwrap();
    }

    /// Each call so far: (what, metadata as (name, value)).
    pub fn calls(&self) -> Vec<(String, Vec<(String, String)>)> {
        let text = std::fs::read_to_string(self.dir.path().join("calls.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let md = v["metadata"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
                    .collect();
                (v["call"].as_str().unwrap().to_string(), md)
            })
            .collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stub.log")).unwrap_or_default()
    }
}

impl Drop for StubCache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
