//! Go import paths as ko takes them (`github.com/org/repo/cmd/app`, optionally written
//! `ko://github.com/...`), and file names for the binary.

#[derive(Debug, thiserror::Error)]
pub enum ImportPathError {
    #[error(
        "invalid import path {found:?}: {why}; expected a Go import path such as github.com/org/repo/cmd/app"
    )]
    Invalid { found: String, why: &'static str },
    #[error("invalid binary name {found:?}: {why}; expected a plain file name such as `app`")]
    InvalidName { found: String, why: &'static str },
}

/// Strips ko's `ko://` scheme.
pub fn strip_scheme(s: &str) -> &str {
    s.strip_prefix("ko://").unwrap_or(s)
}

/// Checks an import path (without `ko://`) by Go's rules for import path elements.
pub fn check(ip: &str) -> Result<(), ImportPathError> {
    let bad = |why| {
        Err(ImportPathError::Invalid {
            found: ip.to_string(),
            why,
        })
    };
    if ip.is_empty() {
        return bad("it is empty");
    }
    if ip.starts_with("ko://") {
        return bad("the ko:// scheme is not part of the import path");
    }
    if ip.starts_with('/') || ip.ends_with('/') {
        return bad("it starts or ends with '/'");
    }
    for elem in ip.split('/') {
        if elem.is_empty() {
            return bad("it has an empty element ('//')");
        }
        if elem == "." || elem == ".." {
            return bad("it has a '.' or '..' element");
        }
        if elem.starts_with('.') || elem.ends_with('.') {
            return bad("an element starts or ends with '.'");
        }
        if !elem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+".contains(&b))
        {
            return bad("it has a character outside A-Z a-z 0-9 - . _ ~ +");
        }
    }
    Ok(())
}

/// Checks a binary name for `/ko-app/<name>`.
pub fn check_file_name(name: &str) -> Result<(), ImportPathError> {
    let bad = |why| {
        Err(ImportPathError::InvalidName {
            found: name.to_string(),
            why,
        })
    };
    if name.is_empty() || name == "." || name == ".." {
        return bad("it is empty, '.' or '..'");
    }
    if name.contains('/') || name.contains('\0') {
        return bad("it contains '/' or NUL");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses() {
        for ok in ["github.com/foo/bar", "example.com/a-b/c_d/v2", "app"] {
            check(ok).unwrap();
        }
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/../b",
            "ko://x/y",
            "a b/c",
            "trailing/",
        ] {
            let e = check(bad).unwrap_err().to_string();
            assert!(e.contains("expected a Go import path"), "{bad}: {e}");
        }
        assert!(check_file_name("a/b").is_err());
    }
}
