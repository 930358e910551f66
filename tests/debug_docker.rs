//! `rko build ./cmd/app --debug` gives an image that debugs for real in docker (issue 11):
//! the container starts the app under `dlv exec --headless --listen=:40000`, and the real
//! Delve client, `dlv connect 127.0.0.1:PORT`, stops it at a breakpoint on `main.main`
//! (before the app has printed anything), lists its goroutines, stops it again in a function
//! the app calls after its first output (which `docker logs` then shows), and kills it.
//!
//! Debian's dlv is dynamically linked, and the default base is static distroless, which has
//! no C library: the test adds the files `ldd` lists for dlv (its ELF interpreter and
//! libraries, dereferenced, at their absolute paths) as an extra layer (`--layer`). A static
//! dlv needs none, and gets none.
//!
//! Docker flags: only `-d` and `-p 127.0.0.1::40000` (the port on loopback only, at a port
//! docker picks). Neither `--cap-add SYS_PTRACE` nor `--security-opt seccomp=unconfined` is
//! needed: `dlv exec` starts the app as its own child with PTRACE_TRACEME (Go's
//! `SysProcAttr.Ptrace`), as the same user (65532), so no capability is involved; docker's
//! default seccomp profile allows ptrace (on kernels from 4.8); and Delve only calls
//! personality(ADDR_NO_RANDOMIZE), which that profile refuses (EPERM), when asked to with
//! `--disable-aslr`, which ko's entrypoint does not pass (and Delve 1.20 launches the app
//! even when that call fails). Adding them would hide a regression that made the image
//! need them.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{DockerImage, RKO};

/// The app: one line of output, then a bounded loop (60 s at most) calling `beat`, a
/// function of its own (the debug build's `-N -l` keeps it out of line) to stop in after
/// that output.
const MAIN: &str = r#"package main

import (
	"fmt"
	"time"
)

func beat(n int) int {
	return n + 1
}

func main() {
	fmt.Println("debug app started")
	n := 0
	for i := 0; i < 600; i++ {
		n = beat(n)
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println("debug app done", n)
}
"#;

/// The longest the test waits for anything: the container's Delve to listen, the client's
/// session as a whole, the container to stop.
const DEADLINE: Duration = Duration::from_secs(60);

/// The Delve client's prompt, written when it waits for a command.
const PROMPT: &str = "(dlv) ";

/// A container, removed (`docker rm -f`) on drop, also when the test fails.
struct Container {
    id: String,
}

impl Container {
    /// `docker run -d ARGS…`.
    fn run(args: &[&str]) -> Self {
        let id = common::run_ok(Command::new("docker").args(["run", "-d"]).args(args))
            .trim()
            .to_string();
        assert!(!id.is_empty(), "docker run -d printed no container id");
        Container { id }
    }

    /// `docker logs`: the container's stdout and stderr.
    fn logs(&self) -> String {
        let out = common::run(Command::new("docker").args(["logs", &self.id]));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn state(&self, field: &str) -> String {
        common::run_ok(Command::new("docker").args([
            "inspect",
            "--format",
            &format!("{{{{.State.{field}}}}}"),
            &self.id,
        ]))
        .trim()
        .to_string()
    }

    /// Waits (polling, bounded by `deadline`) until `docker logs` contains `text`; panics
    /// with the logs if it does not, or if the container stops first.
    fn wait_for_log(&self, text: &str, deadline: Instant) -> String {
        loop {
            let logs = self.logs();
            if logs.contains(text) {
                return logs;
            }
            assert!(
                self.state("Running") == "true",
                "the container stopped (exit code {}) before logging {text:?}:\n{logs}",
                self.state("ExitCode")
            );
            assert!(
                Instant::now() < deadline,
                "no {text:?} in the container's logs after {DEADLINE:?}:\n{logs}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The host address docker published the container's `port` at.
    fn published(&self, port: &str) -> String {
        let out = common::run_ok(Command::new("docker").args(["port", &self.id, port]));
        // One line per host address; `-p 127.0.0.1::PORT` gives one, on IPv4 loopback.
        let addr = out.lines().next().unwrap_or_default().trim().to_string();
        assert!(
            addr.starts_with("127.0.0.1:"),
            "docker port {port} gave {out:?}, not a loopback address"
        );
        addr
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.id]).output();
    }
}

/// A running `dlv connect`, driven command by command; killed on drop.
struct DlvClient {
    child: Child,
    stdin: Option<ChildStdin>,
    /// stdout and stderr as they arrive, interleaved.
    output: Arc<Mutex<Vec<u8>>>,
    deadline: Instant,
}

impl DlvClient {
    fn connect(dlv: &Path, addr: &str) -> Self {
        let mut child = Command::new(dlv)
            .args(["connect", addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} connect: {e}", dlv.display()));
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        DlvClient {
            stdin: child.stdin.take(),
            child,
            output,
            deadline: Instant::now() + DEADLINE,
        }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until the output from byte `start` on contains `expect` (or, for `None`,
    /// ends with Delve's prompt: the client waits for the next command); returns that
    /// output. Panics with the whole session if that does not come by the session's
    /// deadline, or the client exits first.
    fn wait_for(&mut self, start: usize, expect: Option<&str>, what: &str) -> String {
        loop {
            let reply = String::from_utf8_lossy(&self.output.lock().unwrap()[start..]).into_owned();
            let done = match expect {
                Some(text) => reply.contains(text),
                None => reply.ends_with(PROMPT),
            };
            if done {
                return reply;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                // The readers may still be copying its last words.
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "dlv connect exited ({status}) waiting for {what}:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < self.deadline,
                "dlv connect: no {what} within {DEADLINE:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `line` and returns the output it gives before the next prompt.
    fn command(&mut self, line: &str) -> String {
        let start = self.output.lock().unwrap().len();
        let stdin = self.stdin.as_mut().expect("stdin is open");
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            panic!("cannot send {line:?} to dlv ({e}):\n{}", self.output());
        }
        let reply = self.wait_for(start, None, &format!("prompt after {line:?}"));
        reply.strip_suffix(PROMPT).unwrap().to_string()
    }

    /// `exit`, answering yes to killing the headless Delve (and so the app); then waits
    /// (bounded) for the client to exit, and asserts it succeeded.
    fn exit_killing_the_server(&mut self) {
        let start = self.output.lock().unwrap().len();
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "exit").unwrap();
        stdin.flush().unwrap();
        self.wait_for(
            start,
            Some("kill the headless instance?"),
            "the question whether to kill the headless instance",
        );
        let mut stdin = self.stdin.take().unwrap();
        writeln!(stdin, "y").unwrap();
        drop(stdin);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "dlv connect exited with {status}:\n{}",
                    self.output()
                );
                return;
            }
            assert!(
                Instant::now() < self.deadline,
                "dlv connect did not exit within {DEADLINE:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DlvClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The files a dynamically linked `program` needs at run time, as `ldd` lists them: the
/// ELF interpreter and each library, by the absolute paths the loader looks them up at
/// (the vDSO, which has no file, left out). Empty for a static program (`ldd` says "not a
/// dynamic executable" and fails, or "statically linked").
fn shared_objects(program: &Path) -> Vec<PathBuf> {
    let out = common::run(Command::new("ldd").arg(program));
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("statically linked") {
        return Vec::new();
    }
    text.lines()
        .filter_map(|line| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x…)" or "linux-vdso.so.1 (0x…)".
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// A tar of `files`, each at its absolute path made relative (as `rko layer tar` takes
/// them), with the contents of what it names, symlinks followed.
fn library_layer(files: &[PathBuf], out: &Path) {
    let mut tar = tar::Builder::new(std::fs::File::create(out).unwrap());
    for file in files {
        let bytes =
            std::fs::read(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        let name = file.strip_prefix("/").unwrap();
        tar.append_data(&mut header, name, bytes.as_slice())
            .unwrap();
    }
    tar.into_inner().unwrap().sync_all().unwrap();
}

#[test]
fn debug_image_stops_at_main_main_under_dlv_connect_in_docker() {
    common::require_tools!("go", "dlv", "docker");
    let started = Instant::now();
    let dlv = common::require::find_program("dlv").unwrap();
    let w = tempfile::Builder::new()
        .prefix("rko-debug-docker-")
        .tempdir()
        .unwrap();
    let dir = w.path();
    common::write_tree(
        dir,
        &[
            ("go.mod", "module example.com/dbg\n\ngo 1.19\n"),
            ("cmd/app/main.go", MAIN),
        ],
    );

    // Delve's C library, when it has one, as a layer below the app and Delve.
    let libraries = shared_objects(&dlv);
    let tarball = dir.join("debug.tar");
    let name = common::unique_ref("rko-debug");
    let mut args: Vec<String> = [
        "build",
        "./cmd/app",
        "--debug",
        "--dlv",
        dlv.to_str().unwrap(),
        "--tarball",
        tarball.to_str().unwrap(),
        "--tag",
        &name,
        "--sbom",
        "none",
    ]
    .map(String::from)
    .into();
    if !libraries.is_empty() {
        let layer = dir.join("libc.tar");
        library_layer(&libraries, &layer);
        args.extend(["--layer".to_string(), layer.display().to_string()]);
    }
    let built = common::run(
        Command::new(RKO)
            .args(&args)
            .current_dir(dir)
            .env("GOCACHE", common::go_cache())
            .env("GOPROXY", "off")
            .env("GOFLAGS", "")
            .env("GO111MODULE", "on"),
    );
    let warnings = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "rko build failed: {warnings}");
    // The layer holds Delve's interpreter: no warning that it will not start.
    assert!(!warnings.contains("dynamically linked"), "{warnings}");

    // Dropped in reverse order: the container goes before its image.
    let image = DockerImage::load(&tarball, &name);
    let container = Container::run(&["-p", "127.0.0.1::40000", &image.reference]);
    let deadline = Instant::now() + DEADLINE;
    let logs = container.wait_for_log("API server listening at:", deadline);
    assert!(
        !logs.contains("debug app started"),
        "the app ran before a client connected: dlv exec should hold it at its first \
         instruction:\n{logs}"
    );
    let addr = container.published("40000");

    let mut client = DlvClient::connect(&dlv, &addr);
    client.wait_for(0, None, "the first prompt");
    let set = client.command("break main.main");
    assert!(
        set.contains("Breakpoint 1 set at ")
            && set.contains(" for main.main() example.com/dbg/cmd/app/main.go:"),
        "{set}"
    );
    let hit = client.command("continue");
    assert!(
        hit.contains("> main.main() example.com/dbg/cmd/app/main.go:"),
        "not stopped at main.main:\n{hit}"
    );
    // Stopped on entry to main: the app has printed nothing.
    let logs = container.logs();
    assert!(
        !logs.contains("debug app started"),
        "the app printed past its breakpoint on main.main:\n{logs}"
    );

    let goroutines = client.command("goroutines");
    assert!(
        goroutines.contains("* Goroutine 1 - User: example.com/dbg/cmd/app/main.go:")
            && goroutines.contains(" main.main (")
            && goroutines.contains(" goroutines]"),
        "no goroutine list with goroutine 1, the current one, in main.main:\n{goroutines}"
    );

    // On to the first call after the app's output, which docker's logs then show.
    let set = client.command("break main.beat");
    assert!(set.contains("Breakpoint 2 set at "), "{set}");
    let hit = client.command("continue");
    assert!(
        hit.contains("> main.beat() example.com/dbg/cmd/app/main.go:"),
        "not stopped at main.beat:\n{hit}"
    );
    let n = client.command("print n");
    assert_eq!(n.trim(), "0", "the argument n of the first beat");
    container.wait_for_log("debug app started", deadline);

    // Leave, killing the headless Delve and so the app: the container stops.
    client.exit_killing_the_server();
    while container.state("Running") == "true" {
        assert!(
            Instant::now() < deadline,
            "the container still runs after its Delve was killed:\n{}",
            container.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let logs = container.logs();
    assert!(
        !logs.contains("debug app done"),
        "the app ran to its end instead of being killed with its Delve:\n{logs}"
    );
    eprintln!("dlv connect {addr}:\n{}", client.output());
    eprintln!(
        "debug_docker: {} shared objects layered for {}; took {:?}",
        libraries.len(),
        dlv.display(),
        started.elapsed()
    );
}
