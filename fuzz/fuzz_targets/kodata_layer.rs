#![no_main]
//! A kodata tree made from the fuzzer's bytes, written as rko writes the kodata layer and
//! read back with the `tar` crate: the same directories, files and contents, in Go's order.

use std::collections::BTreeMap;
use std::io::Read;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Records separated by NUL: "path\ncontent"; path elements are made valid file names.
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for rec in data.split(|&b| b == 0).take(12) {
        let (p, content) = match rec.iter().position(|&b| b == b'\n') {
            Some(i) => (&rec[..i], &rec[i + 1..]),
            None => (rec, &b""[..]),
        };
        let Ok(p) = std::str::from_utf8(p) else {
            return;
        };
        let elems: Vec<&str> = p
            .split('/')
            .filter(|e| !e.is_empty() && *e != "." && *e != ".." && e.len() <= 255)
            .collect();
        if elems.is_empty() {
            continue;
        }
        let path = elems.join("/");
        // A file cannot also be a directory: keep the first of two clashing paths.
        let clash = files.keys().any(|k| {
            k == &path || path.starts_with(&format!("{k}/")) || k.starts_with(&format!("{path}/"))
        });
        if !clash {
            files.insert(path, content.to_vec());
        }
    }
    let mtime = data.len() as u64 * 1_000_003;
    let list: Vec<(String, Vec<u8>)> = files.clone().into_iter().collect();
    let Some(tar_bytes) = rules_ko::fuzzing::kodata_tar(&list, mtime) else {
        return;
    };
    // The expected tree: the parents, then every directory and file, sorted bytewise per
    // directory (which is the BTreeMap order of the full paths with '/' sorting first
    // only within a directory, so compare as sets and check the parents come first).
    let mut want: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    for (p, c) in &files {
        let mut acc = String::new();
        let elems: Vec<&str> = p.split('/').collect();
        for (i, e) in elems.iter().enumerate() {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(e);
            if i + 1 < elems.len() {
                want.entry(format!("/var/run/ko/{acc}")).or_insert(None);
            }
        }
        want.insert(format!("/var/run/ko/{p}"), Some(c.clone()));
    }
    let mut ar = tar::Archive::new(&tar_bytes[..]);
    let mut got: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    for e in ar.entries().expect("a tar") {
        let mut e = e.expect("a tar entry");
        let path = String::from_utf8(e.path_bytes().into_owned()).expect("UTF-8 path");
        let path = path.trim_end_matches('/').to_string();
        let h = e.header();
        assert_eq!(h.mode().unwrap(), 0o555, "{path}");
        assert_eq!(h.mtime().unwrap(), mtime, "{path}");
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        let is_dir = h.entry_type().is_dir();
        let mut content = Vec::new();
        e.read_to_end(&mut content).expect("entry content");
        got.push((path, (!is_dir).then_some(content)));
    }
    let parents: Vec<&str> = got.iter().take(3).map(|g| g.0.as_str()).collect();
    assert_eq!(parents, ["/var", "/var/run", "/var/run/ko"]);
    let rest: BTreeMap<String, Option<Vec<u8>>> = got[3..].iter().cloned().collect();
    assert_eq!(rest.len(), got.len() - 3, "no path twice");
    assert_eq!(
        rest.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    assert!(rest == want, "contents read back unchanged");
    // Every entry comes after its directory.
    for (i, (p, _)) in got.iter().enumerate() {
        if let Some((parent, _)) = p.rsplit_once('/')
            && !parent.is_empty()
        {
            assert!(
                got[..i].iter().any(|g| g.0 == parent),
                "{p} before its directory"
            );
        }
    }
});
