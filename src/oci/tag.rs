//! Image references for tags (`[registry[:port]/]path[:tag]`), checked by the grammar of
//! the distribution spec so a bad tag fails at build time, not at `docker load`.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRef {
    /// Everything before the tag: `registry/repo/path`.
    pub repository: String,
    pub tag: String,
}

impl std::fmt::Display for TagRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid tag {found:?}: {why}; expected NAME[:TAG] such as example.com/team/app:v1 (lowercase name, tag of letters, digits, '_', '.', '-')"
)]
pub struct TagError {
    pub found: String,
    pub why: String,
}

fn path_component_ok(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_lowercase() && !b[0].is_ascii_digit() {
        return false;
    }
    let last = b[b.len() - 1];
    if !(last.is_ascii_lowercase() || last.is_ascii_digit()) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        if !matches!(ch, b'.' | b'_' | b'-') {
            return false;
        }
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn host_ok(h: &str) -> bool {
    let (host, port) = match h.rsplit_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (h, None),
    };
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Whether the first element of a name is a registry host (`example.com`, `host:5000`,
/// `localhost`) rather than the first element of a Docker Hub path.
pub fn is_registry_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// Parses `NAME[:TAG]` flags, each as [`parse_tag`].
pub fn parse_tags(tags: &[String]) -> Result<Vec<TagRef>, TagError> {
    tags.iter().map(|t| parse_tag(t)).collect()
}

/// Parses `NAME[:TAG]`; the tag defaults to `latest`.
pub fn parse_tag(s: &str) -> Result<TagRef, TagError> {
    let err = |why: &str| TagError {
        found: s.to_string(),
        why: why.to_string(),
    };
    if s.contains('@') {
        return Err(err("a digest (@sha256:…) cannot be a tag"));
    }
    let last_slash = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match s[last_slash..].rfind(':') {
        Some(i) => (&s[..last_slash + i], &s[last_slash + i + 1..]),
        None => (s, "latest"),
    };
    let tb = tag.as_bytes();
    if tb.is_empty()
        || tb.len() > 128
        || !(tb[0].is_ascii_alphanumeric() || tb[0] == b'_')
        || !tb
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(err(
            "the tag must be 1-128 letters, digits, '_', '.', '-', not starting with '.' or '-'",
        ));
    }
    if name.is_empty() || name.len() > 255 {
        return Err(err("the name is empty or longer than 255 characters"));
    }
    let parts: Vec<&str> = name.split('/').collect();
    let (host, path) = if parts.len() > 1 && is_registry_host(parts[0]) {
        (Some(parts[0]), &parts[1..])
    } else {
        (None, &parts[..])
    };
    if let Some(h) = host
        && !host_ok(h)
    {
        return Err(err("the registry host is not a valid host[:port]"));
    }
    if path.is_empty() || !path.iter().all(|c| path_component_ok(c)) {
        return Err(err(
            "each path component must be lowercase letters and digits, separated by '.', '_', '__' or '-'",
        ));
    }
    Ok(TagRef {
        repository: name.to_string(),
        tag: tag.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(parse_tag("app").unwrap().to_string(), "app:latest");
        assert_eq!(
            parse_tag("127.0.0.1:5000/a/b:v1.2").unwrap().repository,
            "127.0.0.1:5000/a/b"
        );
        assert_eq!(parse_tag("localhost/x_y:1").unwrap().tag, "1");
        for bad in [
            "App:1",
            "a:",
            "a:-x",
            "a//b",
            "a@sha256:00",
            "ex ample:1",
            "a:b:c",
        ] {
            let e = parse_tag(bad).unwrap_err().to_string();
            assert!(e.contains("expected NAME[:TAG]"), "{bad}: {e}");
        }
    }
}
