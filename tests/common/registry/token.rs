//! A bearer-token server for registry token auth: the Go program tests/goref/tokenserver.go,
//! built with the machine's `go`, with an ES256 key and certificate made by `openssl`.

use std::io::BufReader;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use super::process::{openssl, run_tool};
use super::{RegistryOptions, TokenAuth};

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
                .env("GOCACHE", super::super::go_cache()),
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
            token: Some(TokenAuth {
                realm: format!("http://{}/token", self.addr),
                service: Self::SERVICE.to_string(),
                issuer: Self::ISSUER.to_string(),
                rootcertbundle: self.dir.path().join("token.pem"),
            }),
            ..RegistryOptions::default()
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
