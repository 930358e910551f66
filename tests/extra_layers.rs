//! Extra layers (`rko layer tar`, `rko build --layer`): users' tars of files next to the
//! binary. The files reach the running container with their types, modes, owners and
//! contents; the same files give the same layer digest whatever made the tar; bad tars are
//! refused with clear errors and leave no outputs.

mod common;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{DockerImage, go_build, layout_blob, read_json, rko_fail, rko_ok, run_ok, unique_ref};
use tempfile::TempDir;

const IMPORT_PATH: &str = "example.com/x/cmd/lister";

/// Prints, for each argument: path, mode, uid:gid, and the link target or the content.
const LISTER: &str = r#"package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	for _, p := range os.Args[1:] {
		fi, err := os.Lstat(p)
		if err != nil {
			fmt.Println(p, "error:", err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %d:%d", p, fi.Mode(), st.Uid, st.Gid)
		if fi.Mode()&os.ModeSymlink != 0 {
			t, _ := os.Readlink(p)
			line += " -> " + t
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				line += " read error: " + err.Error()
			} else {
				line += fmt.Sprintf(" %q links=%d", b, st.Nlink)
			}
		}
		fmt.Println(line)
	}
}
"#;

/// How one input tar is made: the same files, different incidental metadata.
struct Style {
    mtime: u64,
    owner_name: &'static str,
    reversed: bool,
    gnu: bool,
    dir_entries: bool,
}

const PLAIN: Style = Style {
    mtime: 1_700_000_000,
    owner_name: "alice",
    reversed: false,
    gnu: false,
    dir_entries: true,
};

/// The files: a directory (0750), a file, a symlink to it, a hard link to it, and a 0600
/// config owned by 65532 (the static base's nonroot user), as `tar` headers.
fn write_tar(path: &Path, s: &Style) {
    let mut entries: Vec<(tar::Header, Vec<u8>)> = Vec::new();
    let mut add =
        |name: &str, ty: tar::EntryType, mode: u32, owner: u64, link: &str, data: &[u8]| {
            let mut h = if s.gnu {
                tar::Header::new_gnu()
            } else {
                tar::Header::new_ustar()
            };
            h.set_entry_type(ty);
            h.set_mode(mode);
            h.set_uid(owner);
            h.set_gid(owner);
            h.set_mtime(s.mtime);
            h.set_username(s.owner_name).unwrap();
            h.set_groupname(s.owner_name).unwrap();
            h.set_size(data.len() as u64);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            h.set_path(name).unwrap();
            h.set_cksum();
            entries.push((h, data.to_vec()));
        };
    if s.dir_entries {
        add("./etc/", tar::EntryType::Directory, 0o755, 0, "", b"");
    }
    add(
        "./etc/app/",
        tar::EntryType::Directory,
        0o750,
        65532,
        "",
        b"",
    );
    add(
        "./etc/app/zone.txt",
        tar::EntryType::Regular,
        0o644,
        0,
        "",
        b"UTC\n",
    );
    add(
        "./etc/app/current",
        tar::EntryType::Symlink,
        if s.gnu { 0o755 } else { 0o777 },
        0,
        "zone.txt",
        b"",
    );
    add(
        "./etc/app/hard.txt",
        tar::EntryType::Link,
        0o644,
        0,
        "etc/app/zone.txt",
        b"",
    );
    add(
        "./etc/app/secret.conf",
        tar::EntryType::Regular,
        0o600,
        65532,
        "",
        b"token=42\n",
    );
    if s.reversed {
        // Also puts the hard link before its target: accepted, and written after it.
        entries.reverse();
    }
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (h, data) in entries {
        b.append(&h, &data[..]).unwrap();
    }
    b.finish().unwrap();
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `rko layer tar` of `tar`; returns the descriptor.
fn layer(dir: &Path, tar: &Path, extra: &[&str]) -> serde_json::Value {
    let stem = tar.file_name().unwrap().to_str().unwrap();
    let blob = dir.join(format!("{stem}.blob"));
    let desc = dir.join(format!("{stem}.json"));
    let mut args = vec![
        "layer",
        "tar",
        "--tar",
        p(tar),
        "-o",
        p(&blob),
        "--descriptor",
        p(&desc),
    ];
    args.extend(extra);
    rko_ok(args);
    read_json(&desc)
}

#[test]
fn the_same_files_give_the_same_layer_whatever_made_the_tar() {
    let tmp = TempDir::new().unwrap();
    let d = tmp.path();
    let styles = [
        PLAIN,
        Style {
            mtime: 5,
            owner_name: "nonroot-builder",
            reversed: true,
            gnu: true,
            dir_entries: false,
        },
    ];
    let mut digests = Vec::new();
    for (i, s) in styles.iter().enumerate() {
        let tar = d.join(format!("in-{i}.tar"));
        write_tar(&tar, s);
        digests.push(layer(d, &tar, &[])["digest"].clone());
    }
    // Compressed inputs: detected by magic, the same layer.
    let plain = std::fs::read(d.join("in-0.tar")).unwrap();
    let gz = d.join("in-gz.tar");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&plain).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    digests.push(layer(d, &gz, &[])["digest"].clone());
    let zst = d.join("in-zst.tar");
    std::fs::write(&zst, zstd::encode_all(&plain[..], 7).unwrap()).unwrap();
    digests.push(layer(d, &zst, &[])["digest"].clone());
    assert!(digests.iter().all(|x| *x == digests[0]), "{digests:?}");

    // The layer's bytes: ko's name form, the kodata order, owners kept, names and times
    // dropped, the hard link after its target.
    let desc = layer(d, &d.join("in-1.tar"), &["--mtime", "1234"]);
    assert_eq!(desc["content"]["kind"], "tar");
    assert_eq!(desc["content"]["mtime"], 1234);
    assert_ne!(desc["digest"], digests[0], "the mtime is part of the layer");
    let blob = std::fs::read(d.join("in-1.tar.blob")).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
    let got: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 1234);
            assert_eq!(h.username_bytes().unwrap_or_default(), b"");
            assert_eq!(h.groupname_bytes().unwrap_or_default(), b"");
            let link = e
                .link_name()
                .unwrap()
                .map(|l| format!(" -> {}", l.display()))
                .unwrap_or_default();
            format!(
                "{} {:?} {:o} {}:{}{link}",
                String::from_utf8_lossy(&e.path_bytes()),
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap()
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "/etc Directory 755 0:0",
            "/etc/app Directory 750 65532:65532",
            "/etc/app/current Symlink 777 0:0 -> zone.txt",
            "/etc/app/hard.txt Regular 644 0:0",
            "/etc/app/secret.conf Regular 600 65532:65532",
            "/etc/app/zone.txt Link 644 0:0 -> /etc/app/hard.txt",
        ]
    );
}

#[test]
fn bad_tars_are_refused_with_clear_errors_and_no_outputs() {
    let tmp = TempDir::new().unwrap();
    let d = tmp.path();
    let one = |name: &str, ty: tar::EntryType, link: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(ty);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        (name.to_string(), h)
    };
    type Case = (&'static str, Vec<(String, tar::Header)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "absolute",
            vec![one("/etc/x", tar::EntryType::Regular, "")],
            "\"/etc/x\" is absolute",
        ),
        (
            "dotdot",
            vec![one("a/../../x", tar::EntryType::Regular, "")],
            "has a '..' element",
        ),
        (
            "fifo",
            vec![one("run/pipe", tar::EntryType::Fifo, "")],
            "is a fifo",
        ),
        (
            "device",
            vec![one("dev/null", tar::EntryType::Char, "")],
            "is a character device",
        ),
        (
            "duplicate",
            vec![
                one("etc/x", tar::EntryType::Regular, ""),
                one("./etc/x", tar::EntryType::Regular, ""),
            ],
            "is given twice",
        ),
        (
            "file-as-dir",
            vec![
                one("etc", tar::EntryType::Regular, ""),
                one("etc/x", tar::EntryType::Regular, ""),
            ],
            "path \"etc\" is given twice (or as both a file and a directory)",
        ),
        (
            "dangling-hardlink",
            vec![one("etc/x", tar::EntryType::Link, "etc/y")],
            "which is not in the tar",
        ),
    ];
    for (name, entries, want) in cases {
        let tar = d.join(format!("{name}.tar"));
        let mut raw = Vec::new();
        for (path, h) in &entries {
            // Written by hand: the tar crate's path setters refuse some of these names.
            let mut h = h.clone();
            let bytes = path.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
            raw.extend_from_slice(h.as_bytes());
        }
        raw.extend_from_slice(&[0u8; 1024]);
        std::fs::write(&tar, raw).unwrap();
        assert_refused(d, &tar, want);
    }
    // Not a tar, a truncated tar and an empty file.
    let junk = d.join("junk.tar");
    std::fs::write(
        &junk,
        "this is not a tar archive at all, just text\n".repeat(20),
    )
    .unwrap();
    assert_refused(d, &junk, "is not a readable tar");
    let good = d.join("good.tar");
    write_tar(&good, &PLAIN);
    let bytes = std::fs::read(&good).unwrap();
    let cut = d.join("cut.tar");
    // Into the content of the second file's block.
    let zone = bytes.windows(4).position(|w| w == b"UTC\n").unwrap();
    std::fs::write(&cut, &bytes[..zone + 2]).unwrap();
    assert_refused(d, &cut, "is not a readable tar");
    let empty = d.join("empty.tar");
    std::fs::write(&empty, "").unwrap();
    assert_refused(d, &empty, "is not a readable tar: the file is empty");
}

fn assert_refused(d: &Path, tar: &Path, want: &str) {
    let blob = d.join("out.blob");
    let desc = d.join("out.json");
    let err = rko_fail([
        "layer",
        "tar",
        "--tar",
        p(tar),
        "-o",
        p(&blob),
        "--descriptor",
        p(&desc),
    ]);
    assert!(
        err.contains(want),
        "{}: expected {want:?} in:\n{err}",
        tar.display()
    );
    assert!(
        !blob.exists() && !desc.exists(),
        "{}: outputs left behind",
        tar.display()
    );
}

fn mode(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.permissions().mode() & 0o7777, m.uid(), m.gid())
}

struct Built {
    tmp: TempDir,
    tarball: PathBuf,
    layout: PathBuf,
    reference: String,
}

/// `rko build --layer` of the lister with the extra tar: tarball and layout.
fn build_with_layer() -> Built {
    let tmp = TempDir::new().unwrap();
    let d = tmp.path();
    let app = go_build(d, "lister", LISTER, "amd64");
    let tar = d.join("extra.tar");
    write_tar(&tar, &PLAIN);
    let kodata = d.join("kodata");
    std::fs::create_dir_all(&kodata).unwrap();
    std::fs::write(kodata.join("k.txt"), "k").unwrap();
    let (tarball, layout) = (d.join("image.tar"), d.join("layout"));
    let reference = unique_ref("extra-layers");
    let digest = rko_ok([
        "build",
        p(&app),
        "--import-path",
        IMPORT_PATH,
        "--kodata",
        p(&kodata),
        "--layer",
        p(&tar),
        "--tag",
        &reference,
        "--tarball",
        p(&tarball),
        "--layout",
        p(&layout),
        "--provenance",
        p(&d.join("provenance.json")),
    ]);
    // The provenance records the input tar as it was given.
    let deps = read_json(d.join("provenance.json"))["predicate"]["buildDefinition"]
        ["resolvedDependencies"]
        .clone();
    let tar_sha = common::sha256_hex(&std::fs::read(&tar).unwrap());
    assert!(
        deps.as_array().unwrap().contains(&serde_json::json!(
            {"name": "layer/extra.tar", "digest": {"sha256": tar_sha}}
        )),
        "{deps:#}"
    );
    // Layers: the base's, then extra, kodata, binary; history says which is which.
    let index = read_json(layout.join("index.json"));
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());
    let manifest = read_json(layout_blob(&layout, &digest));
    let config = read_json(layout_blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    let history: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take(3)
        .map(|h| h["comment"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "go build output, at /ko-app/lister",
            "kodata contents, at $KO_DATA_PATH",
            "extra layer, from extra.tar"
        ]
    );
    Built {
        tmp,
        tarball,
        layout,
        reference,
    }
}

#[test]
fn docker_runs_the_image_with_the_extra_files() {
    common::require_tools!("docker", "go");
    let b = build_with_layer();
    let image = DockerImage::load(&b.tarball, &b.reference);
    // The static base runs as 65532, which owns the 0600 config, so it can read it.
    let out = image.run(&[
        "/etc/app",
        "/etc/app/zone.txt",
        "/etc/app/hard.txt",
        "/etc/app/current",
        "/etc/app/secret.conf",
        "/var/run/ko/k.txt",
    ]);
    assert_eq!(
        out,
        "/etc/app drwxr-x--- 65532:65532\n\
         /etc/app/zone.txt -rw-r--r-- 0:0 \"UTC\\n\" links=2\n\
         /etc/app/hard.txt -rw-r--r-- 0:0 \"UTC\\n\" links=2\n\
         /etc/app/current Lrwxrwxrwx 0:0 -> zone.txt\n\
         /etc/app/secret.conf -rw------- 65532:65532 \"token=42\\n\" links=1\n\
         /var/run/ko/k.txt -r-xr-xr-x 0:0 \"k\" links=1\n"
    );
}

#[test]
fn umoci_unpacks_the_extra_files() {
    common::require_tools!("umoci", "go");
    let b = build_with_layer();
    let tag = b.reference.rsplit(':').next().unwrap();
    let bundle = b.tmp.path().join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{tag}", p(&b.layout)))
            .arg(&bundle),
    );
    let app = bundle.join("rootfs/etc/app");
    assert_eq!(mode(&app), (0o750, 65532, 65532));
    assert_eq!(mode(&app.join("secret.conf")), (0o600, 65532, 65532));
    assert_eq!(
        std::fs::read_to_string(app.join("secret.conf")).unwrap(),
        "token=42\n"
    );
    assert_eq!(mode(&app.join("zone.txt")), (0o644, 0, 0));
    assert_eq!(
        std::fs::read_link(app.join("current")).unwrap(),
        Path::new("zone.txt")
    );
    let (z, h) = (
        std::fs::metadata(app.join("zone.txt")).unwrap(),
        std::fs::metadata(app.join("hard.txt")).unwrap(),
    );
    assert_eq!((z.ino(), z.nlink()), (h.ino(), 2), "one file, two names");
    assert_eq!(
        std::fs::read_to_string(app.join("hard.txt")).unwrap(),
        "UTC\n"
    );
}

/// Reads an uncompressed tar on stdin and writes it again with Go's `archive/tar`, from
/// fresh headers holding only what an extra layer keeps (as ko fills `tar.Header`).
const GO_REWRITE: &str = r#"package main

import (
	"archive/tar"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	r := tar.NewReader(os.Stdin)
	w := tar.NewWriter(os.Stdout)
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fresh := &tar.Header{
			Name:     h.Name,
			Typeflag: h.Typeflag,
			Mode:     h.Mode,
			Uid:      h.Uid,
			Gid:      h.Gid,
			Size:     h.Size,
			ModTime:  time.Unix(h.ModTime.Unix(), 0),
			Linkname: h.Linkname,
		}
		// Extended attributes, as Go's writer records them.
		for k, v := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				if fresh.PAXRecords == nil {
					fresh.PAXRecords = map[string]string{}
				}
				fresh.PAXRecords[k] = v
			}
		}
		if err := w.WriteHeader(fresh); err != nil {
			panic(err)
		}
		if _, err := io.Copy(w, r); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
}
"#;

#[test]
fn the_layer_tar_is_what_gos_archive_tar_writes() {
    common::require_tools!("go");
    let tmp = TempDir::new().unwrap();
    let d = tmp.path();
    let goarch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let rewrite = go_build(d, "rewrite", GO_REWRITE, goarch);
    // Beyond the usual files: names and link targets that need PAX records or the USTAR
    // prefix field, a non-ASCII name, setuid and sticky bits.
    let long_dir = format!("opt/{}", "d".repeat(120));
    let long_target = format!("/usr/share/{}", "t".repeat(110));
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>,
               name: &str,
               ty: tar::EntryType,
               mode: u32,
               link: &str,
               data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(ty);
        h.set_mode(mode);
        h.set_uid(65532);
        h.set_gid(1000);
        h.set_mtime(99);
        h.set_size(data.len() as u64);
        if link.is_empty() {
            b.append_data(&mut h, name, data).unwrap();
        } else {
            b.append_link(&mut h, name, link).unwrap();
        }
    };
    // Extended attributes (file capabilities, a user attribute) on a file, kept; on a hard
    // link, dropped (its file carries them).
    let cap = [2u8, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    b.append_pax_extensions([
        ("SCHILY.xattr.user.note", &b"kept"[..]),
        ("SCHILY.xattr.security.capability", &cap[..]),
        (
            "SCHILY.xattr.security.selinux",
            &b"system_u:object_r:bin_t:s0"[..],
        ),
        ("SCHILY.xattr.trusted.x", &b"t"[..]),
        ("mtime", &b"99.5"[..]),
    ])
    .unwrap();
    add(
        &mut b,
        "etc/tool",
        tar::EntryType::Regular,
        0o4755,
        "",
        b"#!x\n",
    );
    add(&mut b, "tmp/", tar::EntryType::Directory, 0o1777, "", b"");
    add(
        &mut b,
        &format!("{long_dir}/file.txt"),
        tar::EntryType::Regular,
        0o640,
        "",
        b"long",
    );
    add(
        &mut b,
        &format!("opt/{}", "n".repeat(160)),
        tar::EntryType::Regular,
        0o644,
        "",
        b"pax",
    );
    add(
        &mut b,
        "etc/zoneinfo/Amérique",
        tar::EntryType::Regular,
        0o644,
        "",
        b"tz",
    );
    add(
        &mut b,
        "etc/far",
        tar::EntryType::Symlink,
        0o777,
        &long_target,
        b"",
    );
    // A long name USTAR could split, with a long target: PAX for both.
    add(
        &mut b,
        &format!("{long_dir}/far"),
        tar::EntryType::Symlink,
        0o777,
        &long_target,
        b"",
    );
    b.append_pax_extensions([("SCHILY.xattr.user.link", &b"dropped"[..])])
        .unwrap();
    add(
        &mut b,
        "etc/tool2",
        tar::EntryType::Link,
        0o644,
        "etc/tool",
        b"",
    );
    let tar = d.join("pax.tar");
    std::fs::write(&tar, b.into_inner().unwrap()).unwrap();
    layer(d, &tar, &["--mtime", "77"]);
    let blob = std::fs::read(d.join("pax.tar.blob")).unwrap();
    let mut ours = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&blob[..]), &mut ours)
        .unwrap();
    let mut go = Command::new(&rewrite);
    go.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = go.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&ours).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), ours.len(), "Go writes a different length");
    assert!(
        out.stdout == ours,
        "Go's archive/tar writes different bytes"
    );
    // The cases that matter were there: PAX records for a path and a link target.
    let has = |needle: &[u8]| ours.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"PaxHeaders.0") && has(b" linkpath=/usr/share/") && has(b" path=/etc/zoneinfo/Am")
    );
    // And the layer still holds what was asked: PAX for the long target, owners kept.
    let mut a = tar::Archive::new(&ours[..]);
    let far = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().ends_with("etc/far"))
        .unwrap();
    assert_eq!(
        far.link_name().unwrap().unwrap().to_str().unwrap(),
        long_target
    );
    assert_eq!(
        (far.header().uid().unwrap(), far.header().gid().unwrap()),
        (65532, 1000)
    );
    // The file's capabilities and user attribute, and nothing else: not its SELinux label
    // or trusted attribute, not the link's, not the PAX mtime.
    let mut xattrs = Vec::new();
    for e in tar::Archive::new(&ours[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for x in exts {
                let x = x.unwrap();
                if x.key().unwrap().starts_with("SCHILY.") || x.key().unwrap() == "mtime" {
                    xattrs.push((
                        path.clone(),
                        x.key().unwrap().to_string(),
                        x.value_bytes().to_vec(),
                    ));
                }
            }
        }
    }
    assert_eq!(
        xattrs,
        [
            (
                "/etc/tool".to_string(),
                "SCHILY.xattr.security.capability".to_string(),
                cap.to_vec()
            ),
            (
                "/etc/tool".to_string(),
                "SCHILY.xattr.user.note".to_string(),
                b"kept".to_vec()
            ),
        ]
    );
}

#[test]
fn gnu_tar_of_a_directory_gives_the_same_layer_as_a_tar_written_entry_by_entry() {
    common::require_tools!("tar");
    let tmp = TempDir::new().unwrap();
    let d = tmp.path();
    let root = d.join("root");
    let app = root.join("etc/app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("zone.txt"), "UTC\n").unwrap();
    std::fs::hard_link(app.join("zone.txt"), app.join("hard.txt")).unwrap();
    std::os::unix::fs::symlink("zone.txt", app.join("current")).unwrap();
    std::fs::write(app.join("secret.conf"), "token=42\n").unwrap();
    let chmod =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    chmod(&root.join("etc"), 0o755);
    chmod(&app, 0o750);
    chmod(&app.join("zone.txt"), 0o644);
    chmod(&app.join("secret.conf"), 0o600);
    // Owners from the command line (no chown, so no root needed); the 65532-owned entries,
    // the directory after its files, appended by a second run.
    let gnu = d.join("gnu.tar");
    let tar = |mode: &str, owner: &str, files: &[&str]| {
        run_ok(
            Command::new("tar")
                .arg(mode)
                .arg(&gnu)
                .args(["--format=gnu", "--no-recursion", "--mtime=@42"])
                .arg(format!("--owner={owner}"))
                .arg(format!("--group={owner}"))
                .arg("-C")
                .arg(&root)
                .args(files),
        )
    };
    let root_owned = [
        "./etc",
        "./etc/app/zone.txt",
        "./etc/app/current",
        "./etc/app/hard.txt",
    ];
    tar("-cf", "root:0", &root_owned);
    tar(
        "-rf",
        "builder:65532",
        &["./etc/app/secret.conf", "./etc/app"],
    );
    let listing = run_ok(
        Command::new("tar")
            .arg("-tvf")
            .arg(&gnu)
            .arg("--numeric-owner"),
    );
    assert!(listing.contains("hard.txt link to"), "{listing}");
    let made = d.join("made.tar");
    write_tar(&made, &PLAIN);
    assert_eq!(
        layer(d, &gnu, &[])["digest"],
        layer(d, &made, &[])["digest"],
        "{listing}"
    );
}
