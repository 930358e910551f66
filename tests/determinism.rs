//! Determinism, tested: the same inputs built twice under different conditions (working
//! directory, umask, time zone, locale, thread count, the input files' own path, mtime and
//! mode) give byte-identical outputs, every file of them.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{RKO, fake_go_binary};

struct Conditions {
    umask: &'static str,
    tz: &'static str,
    lang: &'static str,
    threads: &'static str,
    mode: u32,
    mtime: &'static str,
}

/// Copies the inputs to `root`, applies the conditions to them, and builds everything.
fn build(root: &Path, inputs: &Path, c: &Conditions) -> PathBuf {
    let input = root.join("in");
    let out = root.join("out");
    std::fs::create_dir_all(input.join("kodata/sub")).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(inputs.join("app"), input.join("app")).unwrap();
    std::fs::copy(inputs.join("a.txt"), input.join("kodata/a.txt")).unwrap();
    std::fs::copy(inputs.join("b.txt"), input.join("kodata/sub/b.txt")).unwrap();
    for f in ["app", "kodata/a.txt", "kodata/sub/b.txt"] {
        std::fs::set_permissions(input.join(f), std::fs::Permissions::from_mode(c.mode)).unwrap();
        let st = Command::new("touch")
            .args(["-d", c.mtime])
            .arg(input.join(f))
            .status()
            .unwrap();
        assert!(st.success());
    }
    let script = format!(
        "umask {umask}; set -e
         {rko} build in/app --import-path example.com/det/cmd/app --kodata in/kodata --threads {t} \
           --tag example.com/det/app:v1 --tarball out/image.tar --layout out/layout --digest-file out/digest \
           --env A=1 --label org.example=x > out/stdout
         {rko} layer binary --binary in/app --import-path example.com/det/cmd/app --platform linux/amd64 \
           --threads {t} -o out/bin.layer --descriptor out/bin.json
         {rko} layer kodata --file a.txt=in/kodata/a.txt --file sub/b.txt=in/kodata/sub/b.txt \
           --import-path example.com/det/cmd/app --threads {t} -o out/kd.layer --descriptor out/kd.json
         {rko} layer binary --binary in/app --import-path example.com/det/cmd/app --platform linux/amd64 \
           --compression zstd --threads {t} -o out/bin.zst --descriptor out/bin.zst.json
         {rko} image --platform linux/amd64 --layer out/kd.json --layer out/bin.json --env A=1 --label org.example=x \
           --config-out out/config.json --manifest-out out/manifest.json --descriptor-out out/desc.json \
           --digest-out out/image.digest > /dev/null
         {rko} index --image out/desc.json --index-out out/index.json --digest-out out/index.digest > /dev/null
         {rko} tarball --root out/desc.json --blob out/manifest.json --blob out/config.json \
           --layer out/kd.json=out/kd.layer --layer out/bin.json=out/bin.layer --tag det:v1 -o out/actions.tar",
        umask = c.umask,
        rko = RKO,
        t = c.threads,
    );
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(root)
        .env("TZ", c.tz)
        .env("LANG", c.lang)
        .env("LC_ALL", c.lang)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("KO_DATA_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Every file under `dir`, by relative path, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn same_inputs_give_identical_bytes_under_different_conditions() {
    let t = tempfile::tempdir().unwrap();
    let inputs = t.path().join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    fake_go_binary(&inputs.join("app"), 62, (3 << 20) + 777);
    std::fs::write(inputs.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(inputs.join("b.txt"), "beta\n").unwrap();

    let one = build(
        &t.path().join("first"),
        &inputs,
        &Conditions {
            umask: "022",
            tz: "UTC",
            lang: "C",
            threads: "1",
            mode: 0o755,
            mtime: "2001-02-03 04:05:06",
        },
    );
    let two = build(
        &t.path().join("second/nested/deeper"),
        &inputs,
        &Conditions {
            umask: "077",
            tz: "IST-5:30",
            lang: "de_DE.UTF-8",
            threads: "3",
            mode: 0o500,
            mtime: "2030-12-31 23:59:59",
        },
    );
    let (a, b) = (snapshot(&one), snapshot(&two));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert!(
        a.len() >= 20,
        "expected every output to be compared, got {:?}",
        a.keys()
    );
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs between the two builds");
    }
    // The two routes to an image agree: `rko build` and the separate actions.
    assert_eq!(a["digest"], a["image.digest"]);
    // The layer is several compression chunks, so threads really ran in parallel.
    assert!(a["bin.layer"].len() > 1 << 20);
}
