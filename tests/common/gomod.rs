//! A Go program with real dependencies and no network: `example.com/app/cmd/app` requires
//! `example.com/plain v0.3.0` (from a file-based module proxy, so with an `h1:` sum),
//! `example.com/orig v1.0.0` replaced by the module `example.com/fork v1.1.0` (same proxy),
//! and `example.com/lib v1.2.3` replaced by the directory `../lib`. Built for linux/amd64
//! with `-trimpath`, tags and ldflags, by the Go toolchain given (Go 1.27 from the test
//! virtual environment, or Debian's 1.19).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A built program: the binary and what `go version -m` prints for it.
pub struct GoApp {
    pub binary: PathBuf,
    pub version_m: String,
}

/// One module's files in the proxy: `(module@version, [(file, content)])`.
fn proxy_module(proxy: &Path, python: &Path, path: &str, version: &str, module_line: &str) {
    let dir = proxy.join(path).join("@v");
    std::fs::create_dir_all(&dir).unwrap();
    let go_mod = format!("module {module_line}\n\ngo 1.19\n");
    std::fs::write(dir.join(format!("{version}.mod")), &go_mod).unwrap();
    std::fs::write(
        dir.join(format!("{version}.info")),
        format!("{{\"Version\":\"{version}\",\"Time\":\"2024-01-02T03:04:05Z\"}}"),
    )
    .unwrap();
    std::fs::write(dir.join("list"), format!("{version}\n")).unwrap();
    let pkg = module_line.rsplit('/').next().unwrap();
    let go_src = format!("package {pkg}\n\nfunc Name() string {{ return \"{path}@{version}\" }}\n");
    // A module zip: every file under `path@version/`.
    let script = "import sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1], 'w')\n\
        z.writestr(sys.argv[2] + '/go.mod', sys.argv[3])\n\
        z.writestr(sys.argv[2] + '/' + sys.argv[5] + '.go', sys.argv[4])\n\
        z.close()\n";
    super::run_ok(
        Command::new(python)
            .arg("-c")
            .arg(script)
            .arg(dir.join(format!("{version}.zip")))
            .arg(format!("{path}@{version}"))
            .arg(&go_mod)
            .arg(&go_src)
            .arg(pkg),
    );
}

/// Builds the program under `dir` with the `go` toolchain; `python` writes the module zips.
pub fn build_app(dir: &Path, go: &Path, python: &Path) -> GoApp {
    let proxy = dir.join("proxy");
    proxy_module(
        &proxy,
        python,
        "example.com/plain",
        "v0.3.0",
        "example.com/plain",
    );
    // A fork keeps its upstream's module line, as Go requires of a replacement.
    proxy_module(
        &proxy,
        python,
        "example.com/fork",
        "v1.1.0",
        "example.com/orig",
    );
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("go.mod"), "module example.com/lib\n\ngo 1.19\n").unwrap();
    std::fs::write(
        lib.join("lib.go"),
        "package lib\n\nfunc Hello() string { return \"hello\" }\n",
    )
    .unwrap();
    let app = dir.join("app");
    std::fs::create_dir_all(app.join("cmd/app")).unwrap();
    std::fs::write(
        app.join("go.mod"),
        "module example.com/app\n\ngo 1.19\n\nrequire (\n\texample.com/lib v1.2.3\n\
         \texample.com/orig v1.0.0\n\texample.com/plain v0.3.0\n)\n\n\
         replace example.com/lib => ../lib\n\n\
         replace example.com/orig => example.com/fork v1.1.0\n",
    )
    .unwrap();
    std::fs::write(
        app.join("cmd/app/main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/lib\"\n\t\"example.com/orig\"\n\
         \t\"example.com/plain\"\n)\n\nvar version = \"dev\"\n\n\
         func main() { fmt.Println(lib.Hello(), orig.Name(), plain.Name(), version) }\n",
    )
    .unwrap();
    let binary = dir.join("app.bin");
    let env = |c: &mut Command| {
        c.current_dir(&app)
            .env("CGO_ENABLED", "0")
            .env("GOOS", "linux")
            .env("GOARCH", "amd64")
            .env("GOCACHE", super::go_cache())
            .env("GOMODCACHE", dir.join("modcache"))
            .env("GOPATH", dir.join("gopath"))
            .env("GO111MODULE", "on")
            .env("GOPROXY", format!("file://{}", proxy.display()))
            .env("GOSUMDB", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod -modcacherw");
    };
    let mut build = Command::new(go);
    env(&mut build);
    super::run_ok(
        build
            .args([
                "build",
                "-trimpath",
                "-tags",
                "netgo,osusergo",
                "-ldflags",
                "-X main.version=1.0",
                "-o",
            ])
            .arg(&binary)
            .arg("./cmd/app"),
    );
    let mut vm = Command::new(go);
    env(&mut vm);
    let version_m = super::run_ok(vm.args(["version", "-m"]).arg(&binary));
    GoApp { binary, version_m }
}

/// The `dep` lines of `go version -m` output: (path, version, sum, replacement
/// (path, version, sum) if any).
pub type DepLine = (String, String, String, Option<(String, String, String)>);

pub fn dep_lines(version_m: &str) -> Vec<DepLine> {
    let mut out: Vec<DepLine> = Vec::new();
    for line in version_m.lines() {
        let cols: Vec<&str> = line.trim_start_matches('\t').split('\t').collect();
        let col = |i: usize| cols.get(i).copied().unwrap_or("").to_string();
        match cols[0] {
            "dep" => out.push((col(1), col(2), col(3), None)),
            "=>" => {
                if let Some(last) = out.last_mut() {
                    last.3 = Some((col(1), col(2), col(3)));
                }
            }
            _ => {}
        }
    }
    out
}
