#![no_main]
//! The binary layer written from the fuzzer's bytes and read back with the `tar` and
//! `flate2` crates: the same file, at /ko-app/<name>, and digests that are the bytes'.

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fuzz_target!(|data: &[u8]| {
    // The first line is the import path, the rest the binary.
    let (ip, bin) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"example.com/app"[..], data),
    };
    let Ok(ip) = std::str::from_utf8(ip) else {
        return;
    };
    let Some(out) = rules_ko::fuzzing::binary_layer(bin, ip) else {
        return;
    };
    assert_eq!(out.digest, sha(&out.layer));
    assert_eq!(out.size, out.layer.len() as u64);
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&out.layer[..])
        .read_to_end(&mut tar_bytes)
        .expect("the layer is gzip");
    assert_eq!(out.diff_id, sha(&tar_bytes));
    assert_eq!(out.uncompressed_size, tar_bytes.len() as u64);
    let mut ar = tar::Archive::new(&tar_bytes[..]);
    let mut seen = Vec::new();
    for e in ar.entries().expect("a tar") {
        let mut e = e.expect("a tar entry");
        let path = String::from_utf8(e.path_bytes().into_owned()).expect("UTF-8 path");
        let mut content = Vec::new();
        e.read_to_end(&mut content).expect("entry content");
        assert_eq!(e.header().mode().unwrap(), 0o555);
        seen.push((path, e.header().entry_type(), content));
    }
    assert_eq!(
        seen.len(),
        2,
        "{:?}",
        seen.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    assert_eq!(seen[0].0.trim_end_matches('/'), "ko-app");
    assert!(seen[0].1.is_dir());
    assert_eq!(seen[1].0, out.app_path);
    assert!(seen[1].1.is_file());
    assert!(seen[1].2 == bin, "the binary reads back unchanged");
});
