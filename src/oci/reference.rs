//! Registry references: `[host[:port]/]repository[:tag][@sha256:…]`, with Docker Hub's
//! defaults (`docker.io` → `index.docker.io`, `library/` for one-element names).

use std::fmt;

use crate::oci::digest::Sha256Digest;
use crate::oci::tag::{is_registry_host, parse_tag};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` as written (Docker Hub as `index.docker.io`).
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Sha256Digest>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid image reference {found:?}: {why}; expected [HOST[:PORT]/]REPOSITORY[:TAG][@sha256:…] such as 127.0.0.1:5000/team/app@sha256:…"
)]
pub struct ReferenceError {
    pub found: String,
    pub why: String,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let err = |why: &str| ReferenceError {
            found: s.to_string(),
            why: why.to_string(),
        };
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(d.parse::<Sha256Digest>().map_err(|e| err(&e.to_string()))?),
            ),
            None => (s, None),
        };
        let tagged = parse_tag(rest).map_err(|e| err(&e.why))?;
        let tag = if rest[rest.rfind('/').map(|i| i + 1).unwrap_or(0)..].contains(':') {
            Some(tagged.tag)
        } else {
            None
        };
        let name = tagged.repository;
        let (registry, repository) = match name.split_once('/') {
            Some((h, r)) if is_registry_host(h) => (h.to_string(), r.to_string()),
            _ => ("index.docker.io".to_string(), name.clone()),
        };
        let registry = if registry == "docker.io" {
            "index.docker.io".to_string()
        } else {
            registry
        };
        let repository = if registry == "index.docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let r = Reference {
            registry,
            repository,
            tag,
            digest,
        };
        // The limit is on the whole name as it is printed (and as `docker pull` normalizes
        // it): `app` is `index.docker.io/library/app`.
        if r.name().len() > 255 {
            return Err(err(&format!(
                "the name {} is longer than 255 characters",
                r.name()
            )));
        }
        Ok(r)
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry for: the digest when pinned, else the tag (or `latest`).
    pub fn target(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_hub_defaults() {
        let r = Reference::parse("alpine").unwrap();
        assert_eq!(r.name(), "index.docker.io/library/alpine");
        assert_eq!(r.target(), "latest");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("127.0.0.1:5000/team/app:v1@{d}")).unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "team/app", Some("v1"))
        );
        assert_eq!(r.target(), d);
        assert!(Reference::parse("UPPER/x").is_err());
    }

    /// Found by fuzzing (fuzz/fuzz_targets/names.rs): a short name within 255 characters
    /// printed with Docker Hub's prefix was over the limit, so it did not parse again.
    #[test]
    fn the_length_limit_counts_the_printed_name() {
        let name = "a".repeat(250);
        let e = Reference::parse(&name).unwrap_err().to_string();
        assert!(e.contains("longer than 255"), "{e}");
        let r = Reference::parse(&"b".repeat(230)).unwrap();
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
    }
}
