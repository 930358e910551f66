//! Checking bytes against the descriptor that names them. Every reader of a blob (the
//! archive writers, a base layout, a pull, a push) goes through [`verify`] or
//! [`verify_bytes`], so a wrong blob is always reported by the one [`Mismatch`] error.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use crate::oci::descriptor::Descriptor;
use crate::oci::digest::Sha256Digest;

/// Bytes that are not what their descriptor says.
#[derive(Debug, thiserror::Error)]
#[error(
    "{subject} does not match its descriptor: expected {expected} ({expected_size} bytes), \
     found {found} ({found_size} bytes); {remedy}"
)]
pub struct Mismatch {
    /// What was read, e.g. `blob /path/to/file` or `blob sha256:… from host/repo`.
    pub subject: String,
    pub expected: Sha256Digest,
    pub expected_size: u64,
    pub found: Sha256Digest,
    pub found_size: u64,
    /// What the user can do about it.
    pub remedy: &'static str,
}

/// Why a verified copy failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Mismatch(#[from] Mismatch),
    #[error("reading {subject}")]
    Read {
        subject: String,
        #[source]
        cause: std::io::Error,
    },
    /// Writing the copy failed (a full disk, a closed pipe): the output's fault, not the
    /// blob's. The I/O error stays in the chain, so callers can tell its kind.
    #[error("writing the copy of {subject}")]
    Write {
        subject: String,
        #[source]
        cause: std::io::Error,
    },
}

/// Copies `r` into `w` while hashing, reading at most one byte more than `desc.size` (so a
/// blob longer than its descriptor is caught without reading it all), and checks digest and
/// size. `subject` and `remedy` word the error. Returns the bytes copied.
pub fn verify(
    desc: &Descriptor,
    r: &mut impl Read,
    w: &mut impl Write,
    subject: impl FnOnce() -> String,
    remedy: &'static str,
) -> Result<u64, VerifyError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(cause) => {
                let subject = subject();
                return Err(VerifyError::Read { subject, cause });
            }
        };
        n += k as u64;
        if k == 0 || n > desc.size {
            break;
        }
        h.update(&buf[..k]);
        if let Err(cause) = w.write_all(&buf[..k]) {
            let subject = subject();
            return Err(VerifyError::Write { subject, cause });
        }
    }
    check(desc, Sha256Digest::from_hasher(h), n, subject, remedy)?;
    Ok(n)
}

/// Checks bytes in memory against `desc`.
pub fn verify_bytes(
    desc: &Descriptor,
    bytes: &[u8],
    subject: impl FnOnce() -> String,
    remedy: &'static str,
) -> Result<(), Mismatch> {
    check(
        desc,
        Sha256Digest::of(bytes),
        bytes.len() as u64,
        subject,
        remedy,
    )
}

fn check(
    desc: &Descriptor,
    found: Sha256Digest,
    found_size: u64,
    subject: impl FnOnce() -> String,
    remedy: &'static str,
) -> Result<(), Mismatch> {
    if found == desc.digest && found_size == desc.size {
        return Ok(());
    }
    Err(Mismatch {
        subject: subject(),
        expected: desc.digest,
        expected_size: desc.size,
        found,
        found_size,
        remedy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_what_matches_and_names_what_does_not() {
        let desc = Descriptor::of_bytes("x", b"hello");
        let mut out = Vec::new();
        let n = verify(&desc, &mut &b"hello"[..], &mut out, || "h".into(), "r").unwrap();
        assert_eq!((n, out.as_slice()), (5, &b"hello"[..]));
        // Longer than the descriptor: stops one read past the size, counts what it read.
        let e = verify(
            &desc,
            &mut &b"hello!"[..],
            &mut Vec::new(),
            || "blob h".into(),
            "redo",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("blob h does not match its descriptor: expected"),
            "{e}"
        );
        assert!(
            e.contains("(5 bytes), found") && e.ends_with("; redo"),
            "{e}"
        );
        assert!(verify_bytes(&desc, b"hellO", || "b".into(), "r").is_err());
        assert!(verify_bytes(&desc, b"hello", || "b".into(), "r").is_ok());
    }
}
