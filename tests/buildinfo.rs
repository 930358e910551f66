//! `rko buildinfo BINARY` against `go version -m BINARY` of the same toolchain, line for
//! line, on real Go binaries built here: Debian's Go 1.19 (`go` on PATH) and the test
//! virtualenv's Go 1.27 (`pyvenv:go`), with a dependency through a local `replace`, VCS
//! stamping, tags and ldflags with spaces and quotes, stripped, cross-built for
//! linux/arm64, linux/386, linux/s390x (big endian), windows (PE) and darwin (Mach-O, also
//! as a universal file), with the ELF section headers removed, and damaged.
//!
//! rko always prints the current quoting (`build` keys and values holding spaces, tabs,
//! newlines, quotes or backquotes quoted with `strconv.Quote`); Debian's Go 1.19.8 already
//! writes and prints that form, so every binary is compared with the `go version -m` of
//! the toolchain that built it, and a Go 1.19 binary also with Go 1.27's.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{require_tools, run, run_ok};

/// The program: one dependency, example.com/lib, replaced by a directory beside it.
const MAIN_GO: &str = r#"package main

import "example.com/lib"

var msg = "unset"

func main() { println(lib.Hello(), msg) }
"#;
const GO_MOD: &str = "module example.com/app\n\ngo 1.19\n\nrequire example.com/lib v0.0.0\n\n\
                      replace example.com/lib => ../lib\n";

/// A work tree `root/` with `app/` (module example.com/app, main package at cmd/app) and
/// `lib/` (module example.com/lib).
fn write_modules(root: &Path) {
    let app = root.join("app/cmd/app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::create_dir_all(root.join("lib")).unwrap();
    std::fs::write(root.join("app/go.mod"), GO_MOD).unwrap();
    std::fs::write(app.join("main.go"), MAIN_GO).unwrap();
    std::fs::write(
        root.join("lib/go.mod"),
        "module example.com/lib\n\ngo 1.19\n",
    )
    .unwrap();
    std::fs::write(
        root.join("lib/lib.go"),
        "package lib\n\nfunc Hello() string { return \"hello\" }\n",
    )
    .unwrap();
}

/// A Go toolchain: Debian's (`go` on PATH, 1.19) or the virtualenv's (1.27).
fn debian_go() -> PathBuf {
    PathBuf::from("go")
}

fn venv_go() -> Option<PathBuf> {
    common::require::pyvenv_program("go")
}

/// Runs `go build` of ./cmd/app in `root/app` with `go`, extra `args` and `env`, writing
/// `root/out/name`; returns the binary's path.
fn go_build(go: &Path, root: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> PathBuf {
    let out = root.join("out").join(name);
    let mut cmd = Command::new(go);
    cmd.arg("build")
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg("./cmd/app")
        .current_dir(root.join("app"))
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", common::go_cache())
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GO111MODULE", "on")
        .env_remove("GOOS")
        .env_remove("GOARCH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_ok(&mut cmd);
    out
}

/// `go version -m binary` with `go`.
fn go_version_m(go: &Path, binary: &Path) -> String {
    run_ok(Command::new(go).args(["version", "-m"]).arg(binary))
}

fn rko_buildinfo(binary: &Path) -> String {
    run_ok(common::rko(["buildinfo"]).arg(binary))
}

fn rko_json(binary: &Path) -> serde_json::Value {
    common::parse_json(&run_ok(common::rko(["buildinfo", "--json"]).arg(binary)))
}

/// Checks rko's output against `go version -m` of the toolchain that built the binary,
/// and for one built by Debian's Go 1.19 also against Go 1.27's. Returns rko's output.
fn check(built_by: &Path, binary: &Path) -> String {
    let ours = rko_buildinfo(binary);
    assert_eq!(
        ours,
        go_version_m(built_by, binary),
        "against its own toolchain"
    );
    if built_by == debian_go()
        && let Some(v) = venv_go()
    {
        assert_eq!(
            ours,
            go_version_m(&v, binary),
            "against Go 1.27's go version -m"
        );
    }
    ours
}

/// The toolchains to build with: Debian's Go, and the virtualenv's when it is there.
fn toolchains() -> Vec<PathBuf> {
    let mut t = vec![debian_go()];
    t.extend(venv_go());
    t
}

#[test]
fn local_replace_deps_match_go_version_m() {
    require_tools!("go", "pyvenv:go");
    let dir = tempfile::tempdir().unwrap();
    write_modules(dir.path());
    for (i, go) in toolchains().iter().enumerate() {
        let bin = go_build(go, dir.path(), &format!("app{i}"), &["-trimpath"], &[]);
        let out = check(go, &bin);
        assert!(out.contains("\tpath\texample.com/app/cmd/app\n"), "{out}");
        assert!(out.contains("\tmod\texample.com/app\t(devel)\t\n"), "{out}");
        assert!(
            out.contains("\tdep\texample.com/lib\tv0.0.0\n\t=>\t../lib\t(devel)\t\n\t\n"),
            "{out}"
        );
        let json = rko_json(&bin);
        assert_eq!(json["deps"][0]["replace"]["path"], "../lib");
        assert_eq!(json["main"]["path"], "example.com/app");
    }
}

#[test]
fn vcs_stamping_in_a_git_repository() {
    require_tools!("go", "pyvenv:go", "git");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_modules(root);
    // The binaries go to out/, which must not make the tree look modified.
    std::fs::write(root.join(".gitignore"), "out/\n").unwrap();
    let git = |args: &[&str]| {
        run_ok(
            Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .current_dir(root)
                .env("GIT_AUTHOR_DATE", "2024-01-02T03:04:05Z")
                .env("GIT_COMMITTER_DATE", "2024-01-02T03:04:05Z"),
        )
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "one"]);
    let head = git(&["rev-parse", "HEAD"]).trim().to_string();
    for (i, go) in toolchains().iter().enumerate() {
        let clean = go_build(go, root, &format!("clean{i}"), &[], &[]);
        let out = check(go, &clean);
        assert!(
            out.contains(&format!("\tbuild\tvcs.revision={head}\n")),
            "{out}"
        );
        assert!(
            out.contains("\tbuild\tvcs.time=2024-01-02T03:04:05Z\n"),
            "{out}"
        );
        assert!(out.contains("\tbuild\tvcs.modified=false\n"), "{out}");
        assert!(out.contains("\tbuild\tvcs=git\n"), "{out}");
    }
    std::fs::write(root.join("app/cmd/app/extra.go"), "package main\n").unwrap();
    for (i, go) in toolchains().iter().enumerate() {
        let dirty = go_build(go, root, &format!("dirty{i}"), &[], &[]);
        let out = check(go, &dirty);
        assert!(out.contains("\tbuild\tvcs.modified=true\n"), "{out}");
    }
}

#[test]
fn tags_and_ldflags_with_spaces_and_quotes() {
    require_tools!("go", "pyvenv:go");
    let dir = tempfile::tempdir().unwrap();
    write_modules(dir.path());
    let ldflags = "-ldflags=-X 'main.msg=say \"hi\" to `me`' -X main.unused=a=b";
    for (i, go) in toolchains().iter().enumerate() {
        let bin = go_build(
            go,
            dir.path(),
            &format!("flags{i}"),
            &["-tags=netgo,osusergo", ldflags],
            &[],
        );
        let out = check(go, &bin);
        assert!(out.contains("\tbuild\t-tags=netgo,osusergo\n"), "{out}");
        // Quoted as Go 1.20+ does, whichever Go built it.
        assert!(
            out.contains(
                "\tbuild\t-ldflags=\"-X 'main.msg=say \\\"hi\\\" to `me`' -X main.unused=a=b\"\n"
            ),
            "{out}"
        );
        let json = rko_json(&bin);
        let ld = json["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == "-ldflags")
            .unwrap();
        assert_eq!(ld["value"], &ldflags["-ldflags=".len()..]);
    }
}

#[test]
fn stripped_binaries() {
    require_tools!("go", "pyvenv:go");
    let dir = tempfile::tempdir().unwrap();
    write_modules(dir.path());
    for (i, go) in toolchains().iter().enumerate() {
        let bin = go_build(go, dir.path(), &format!("s{i}"), &["-ldflags=-s -w"], &[]);
        let out = check(go, &bin);
        assert!(out.contains("\tbuild\t-ldflags=\"-s -w\"\n"), "{out}");
        assert!(out.contains("\tdep\texample.com/lib\tv0.0.0\n"), "{out}");
    }
}

/// ELF for arm64, 386 (32-bit) and s390x (big endian), PE (amd64 and 386) and Mach-O
/// (arm64, amd64, and both in one universal file), built by Go 1.27.
#[test]
fn cross_builds_elf_pe_macho() {
    require_tools!("pyvenv:go");
    let go = venv_go().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_modules(dir.path());
    let mut darwin = Vec::new();
    for (os, arch) in [
        ("linux", "arm64"),
        ("linux", "386"),
        ("linux", "s390x"),
        ("windows", "amd64"),
        ("windows", "386"),
        ("darwin", "arm64"),
        ("darwin", "amd64"),
    ] {
        let name = format!("app-{os}-{arch}");
        let bin = go_build(
            &go,
            dir.path(),
            &name,
            &["-trimpath"],
            &[("GOOS", os), ("GOARCH", arch)],
        );
        let out = check(&go, &bin);
        assert!(out.contains(&format!("\tbuild\tGOOS={os}\n")), "{out}");
        assert!(out.contains(&format!("\tbuild\tGOARCH={arch}\n")), "{out}");
        if os == "darwin" {
            darwin.push(bin);
        }
    }
    let fat = dir.path().join("out/app-darwin-universal");
    write_universal(&fat, &darwin);
    let out = check(&go, &fat);
    // Go reads the first architecture of a universal file.
    assert!(out.contains("\tbuild\tGOARCH=arm64\n"), "{out}");
}

/// A universal (fat) Mach-O file of `slices`, each at a 16 KiB boundary.
fn write_universal(path: &Path, slices: &[PathBuf]) {
    let mut head = Vec::new();
    head.extend_from_slice(&0xcafe_babe_u32.to_be_bytes());
    head.extend_from_slice(&(slices.len() as u32).to_be_bytes());
    let mut body = Vec::new();
    let align = 1u32 << 14;
    let mut off = align as usize;
    for s in slices {
        let bytes = std::fs::read(s).unwrap();
        let cpu = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        let sub = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        for v in [cpu, sub, off as u32, bytes.len() as u32, 14] {
            head.extend_from_slice(&v.to_be_bytes());
        }
        body.resize(off - align as usize, 0);
        body.extend_from_slice(&bytes);
        off = (align as usize + body.len()).next_multiple_of(align as usize);
    }
    head.resize(align as usize, 0);
    head.extend_from_slice(&body);
    std::fs::write(path, head).unwrap();
}

/// An ELF whose section header table is gone (e_shoff, e_shnum, e_shstrndx zeroed): the
/// build info is then found at the start of the first writable PT_LOAD segment, as Go
/// 1.19's reader does.
#[test]
fn elf_without_section_headers() {
    require_tools!("go");
    let dir = tempfile::tempdir().unwrap();
    write_modules(dir.path());
    let go = debian_go();
    let bin = go_build(&go, dir.path(), "app", &[], &[]);
    let expected = rko_buildinfo(&bin);
    let mut bytes = std::fs::read(&bin).unwrap();
    assert_eq!(&bytes[..6], b"\x7fELF\x02\x01");
    bytes[0x28..0x30].fill(0);
    bytes[0x3c..0x40].fill(0);
    let bare = dir.path().join("out/app-no-sections");
    std::fs::write(&bare, &bytes).unwrap();
    // Go 1.19's `go version -m` skips files that are not executable.
    set_executable(&bare);
    // Go 1.19 reads it too (Go 1.27 no longer looks past a missing .go.buildinfo).
    assert_eq!(rko_buildinfo(&bare), go_version_m(&go, &bare));
    assert_eq!(
        rko_buildinfo(&bare),
        expected.replace(&bin.display().to_string(), &bare.display().to_string())
    );
}

#[test]
fn non_go_files_have_no_build_info() {
    require_tools!("go");
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("true");
    std::fs::copy("/bin/true", &t).unwrap();
    let text = dir.path().join("script.sh");
    std::fs::write(&text, "#!/bin/sh\necho hi\n").unwrap();
    set_executable(&text);
    for f in [&t, &text] {
        let err = common::rko_fail(["buildinfo".as_ref(), f.as_os_str()]);
        assert!(err.contains("has no Go build info"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        // Go agrees that there is none.
        let go = run(Command::new("go").args(["version", "-m"]).arg(f));
        assert!(
            String::from_utf8_lossy(&go.stdout).is_empty(),
            "go version -m found build info in {}",
            f.display()
        );
    }
}

fn set_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The offset of the 16-byte-aligned build info magic in `bytes`.
fn magic_offset(bytes: &[u8]) -> usize {
    (0..bytes.len())
        .step_by(16)
        .find(|&i| bytes[i..].starts_with(b"\xff Go buildinf:"))
        .expect("build info magic")
}

fn fails_clearly(o: &Output, wants: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "rko succeeded: {err}");
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in wants {
        assert!(err.contains(w), "expected {w:?} in: {err}");
    }
    err
}

#[test]
fn corrupt_binaries_give_clear_errors() {
    require_tools!("go");
    let dir = tempfile::tempdir().unwrap();
    write_modules(dir.path());
    let bin = go_build(&debian_go(), dir.path(), "app", &[], &[]);
    let bytes = std::fs::read(&bin).unwrap();
    let write = |name: &str, b: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, b).unwrap();
        p
    };
    let at = magic_offset(&bytes);
    // Truncated: in the ELF header, in the program headers, right at the build info
    // block, and inside it. (Cut after the block, a binary still has its build info: the
    // reader never looks at the rest, nor does Go's.)
    for cut in [20, 100, at, at + 40] {
        let p = write(&format!("cut{cut}"), &bytes[..cut]);
        fails_clearly(
            &run(common::rko(["buildinfo"]).arg(&p)),
            &["past its end", "truncated or damaged"],
        );
    }
    // The module info's length (after the 1-byte version length and the version) made
    // huge: past the end of the segment.
    let vlen = bytes[at + 32] as usize;
    let mut b = bytes.clone();
    b[at + 33 + vlen..at + 33 + vlen + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0x1f]);
    let p = write("long-modinfo", &b);
    fails_clearly(
        &run(common::rko(["buildinfo"]).arg(&p)),
        &["module info", "runs past the end of the segment"],
    );
    // A version length beyond any version.
    let mut b = bytes.clone();
    b[at + 32..at + 35].copy_from_slice(&[0xff, 0xff, 0x7f]);
    let p = write("long-version", &b);
    fails_clearly(
        &run(common::rko(["buildinfo"]).arg(&p)),
        &["Go version of 2097151 bytes", "expected at most"],
    );
    // A uvarint that never ends.
    let mut b = bytes.clone();
    b[at + 32..at + 42].fill(0xff);
    let p = write("bad-varint", &b);
    fails_clearly(
        &run(common::rko(["buildinfo"]).arg(&p)),
        &["not a valid uvarint"],
    );
    // The pre-1.18 pointer form with a pointer size that is neither 4 nor 8.
    let mut b = bytes.clone();
    b[at + 14] = 3;
    b[at + 15] = 0;
    let p = write("ptr-size", &b);
    fails_clearly(
        &run(common::rko(["buildinfo"]).arg(&p)),
        &["pointer size of 3", "expected 4 or 8"],
    );
    // Module text that is not module info: the error names the line.
    let mut b = bytes.clone();
    let text_at = at + 33 + vlen + 2 + 16; // past the 2-byte length and the sentinel
    assert_eq!(&b[text_at..text_at + 5], b"path\t");
    b[text_at..text_at + 5].copy_from_slice(b"bogus");
    let p = write("bad-text", &b);
    fails_clearly(
        &run(common::rko(["buildinfo"]).arg(&p)),
        &["line 1", "no tab after the line's first word"],
    );
}

/// The fuzz seeds (fuzz/corpus/buildinfo: tiny hand-made ELF, Mach-O and PE files, one
/// with Go 1.17's pointer header, one with no section headers) read as both Go readers
/// read them. Go 1.27 no longer falls back to the first writable segment, so it finds
/// nothing in `elf64-segment-only`; Go 1.19 (and rko) do.
#[test]
fn fuzz_seeds_read_as_go_reads_them() {
    require_tools!("go", "pyvenv:go");
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/buildinfo");
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "elf64-section",
        "elf64-segment-only",
        "elf64-go117-pointers",
        "macho64-arm64",
        "pe-data-section",
    ];
    for name in names {
        let p = dir.path().join(name);
        std::fs::copy(seeds.join(name), &p).unwrap();
        set_executable(&p);
        let ours = rko_buildinfo(&p);
        assert!(ours.contains("\tpath\texample.com/app/cmd/app\n"), "{ours}");
        assert_eq!(ours, go_version_m(&debian_go(), &p), "{name}, Go 1.19");
        let go127 = run(Command::new(venv_go().unwrap())
            .args(["version", "-m"])
            .arg(&p));
        if name == "elf64-segment-only" {
            assert!(!go127.status.success() || go127.stdout.is_empty());
        } else {
            assert_eq!(
                ours,
                String::from_utf8_lossy(&go127.stdout),
                "{name}, Go 1.27"
            );
        }
    }
}
