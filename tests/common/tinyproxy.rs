//! A real forward proxy: Debian's `tinyproxy` (1.11) on 127.0.0.1, with its own
//! configuration and log in a temporary directory, for `HTTPS_PROXY` / `HTTP_PROXY` tests.
//! It allows clients from 127.0.0.1 only, has no `ConnectPort` line unless asked (so CONNECT
//! reaches any port, a registry's included), logs at level `Connect`, runs in the foreground (`-d`) and
//! is killed on drop.
//!
//! At that level tinyproxy 1.11 logs each request line, e.g.
//! `CONNECT   Dec 01 12:03:41.963 [14840]: Request (file descriptor 5): CONNECT 0.0.0.0:38889 HTTP/1.1`
//! for a tunnel and `… Request (file descriptor 5): GET http://0.0.0.0:38889/v2/ HTTP/1.1`
//! for a plain-HTTP request; [`Tinyproxy::requests`] gives those request lines.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::registry::free_port;

const START_ATTEMPTS: usize = 5;
const START_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// A `tinyproxy -d -c CONF` process on 127.0.0.1. Killed (SIGKILL) and reaped on drop.
pub struct Tinyproxy {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Tinyproxy {
    /// Starts tinyproxy on a free loopback port and waits (at most ~10 s per attempt, up to
    /// 5 ports) until it accepts connections. Panics with its log if it does not.
    pub fn start() -> Tinyproxy {
        Self::start_with_connect_ports(&[])
    }

    /// [`Tinyproxy::start`], allowing CONNECT only to `ports` (`ConnectPort` lines) when
    /// any are given, as corporate proxies commonly do (Squid's default allows 443 only).
    pub fn start_with_connect_ports(ports: &[u16]) -> Tinyproxy {
        let connect_ports: String = ports.iter().map(|p| format!("ConnectPort {p}\n")).collect();
        let dir = tempfile::Builder::new()
            .prefix("rko-tinyproxy-")
            .tempdir()
            .unwrap();
        let mut last = String::new();
        let mut dir = Some(dir);
        for _ in 0..START_ATTEMPTS {
            let d = dir.take().unwrap();
            let port = free_port();
            let log = d.path().join("tinyproxy.log");
            let _ = std::fs::remove_file(&log);
            let conf = d.path().join("tinyproxy.conf");
            std::fs::write(
                &conf,
                format!(
                    "Port {port}\n\
                     Listen 127.0.0.1\n\
                     Allow 127.0.0.1\n\
                     Timeout 60\n\
                     MaxClients 64\n\
                     LogFile \"{}\"\n\
                     LogLevel Connect\n\
                     DisableViaHeader Yes\n\
                     {connect_ports}",
                    log.display()
                ),
            )
            .unwrap();
            let out = std::fs::File::create(d.path().join("stdout.log")).unwrap();
            let child = Command::new("tinyproxy")
                .arg("-d")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .current_dir(d.path())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run tinyproxy (apt-get install tinyproxy): {e}")
                });
            // From here on, dropping `proxy` kills the process.
            let mut proxy = Tinyproxy {
                child,
                port,
                dir: d,
            };
            match proxy.wait_ready() {
                Ok(()) => return proxy,
                Err(e) => {
                    last = e;
                    let _ = proxy.child.kill();
                    let _ = proxy.child.wait();
                    // Keep the directory for the next attempt.
                    dir = Some(std::mem::replace(&mut proxy.dir, TempDir::new().unwrap()));
                }
            }
        }
        panic!("tinyproxy did not start in {START_ATTEMPTS} attempts:\n{last}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "tinyproxy exited with {status}\n{}",
                    self.all_output()
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                // Our process, not another one that took the port meanwhile (tinyproxy
                // exits at once when it cannot listen).
                std::thread::sleep(Duration::from_millis(100));
                if let Ok(None) = self.child.try_wait() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "tinyproxy not listening after {START_TIMEOUT:?}\n{}",
                    self.all_output()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`, for `HTTPS_PROXY` / `HTTP_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Its log file so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("tinyproxy.log")
    }

    /// The request lines it logged so far, in order: `CONNECT 0.0.0.0:5000 HTTP/1.1`,
    /// `GET http://0.0.0.0:5000/v2/ HTTP/1.1`, ….
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.split_once("): ").filter(|_| l.contains(" Request (")))
            .map(|(_, r)| r.trim().to_string())
            .collect()
    }

    /// The `host:port` of each CONNECT it logged so far.
    pub fn connects(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|r| r.strip_prefix("CONNECT "))
            .map(|r| r.split(' ').next().unwrap_or_default().to_string())
            .collect()
    }

    /// Log file and stdout/stderr, for panic messages.
    pub fn all_output(&self) -> String {
        format!(
            "--- log\n{}\n--- output\n{}",
            self.log(),
            std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
        )
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
