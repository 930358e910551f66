//! Platforms (`os/arch[/variant]`) as OCI records them, parsed with checks against Go's
//! GOOS/GOARCH lists, and matched against an index's entries the way ko matches them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const KNOWN_OS: &[&str] = &[
    "linux",
    "windows",
    "darwin",
    "freebsd",
    "netbsd",
    "openbsd",
    "solaris",
    "illumos",
    "aix",
    "plan9",
    "dragonfly",
    "android",
    "ios",
    "js",
    "wasip1",
];
const KNOWN_ARCH: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le", "mips64",
    "mipsle", "mips", "loong64", "wasm",
];

/// An OCI platform. Field order and names are those of the OCI JSON.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid platform {found:?}: {why}; expected os/arch[/variant] such as linux/amd64 or linux/arm/v7"
)]
pub struct PlatformError {
    pub found: String,
    pub why: String,
}

impl Platform {
    pub fn new(os: &str, arch: &str) -> Self {
        Platform {
            architecture: arch.to_string(),
            os: os.to_string(),
            os_version: None,
            os_features: None,
            variant: None,
        }
    }

    /// The platform an image config records.
    pub fn of_config(config: &crate::oci::config::ConfigFile) -> Self {
        Platform {
            os_version: config.os_version.clone(),
            variant: config.variant.clone(),
            ..Platform::new(&config.os, &config.architecture)
        }
    }

    /// ko's matching of a wanted platform against an index entry: os and architecture equal;
    /// the variant (and os.version) must be equal when the wanted platform names one.
    pub fn matches(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return false;
        }
        if let Some(v) = &self.variant
            && candidate.variant.as_deref() != Some(v.as_str())
        {
            return false;
        }
        if let Some(v) = &self.os_version
            && candidate.os_version.as_deref() != Some(v.as_str())
        {
            return false;
        }
        true
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: String| PlatformError {
            found: s.to_string(),
            why,
        };
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(err(
                "it must have two or three non-empty parts separated by '/'".into(),
            ));
        }
        let (os, arch) = (parts[0], parts[1]);
        if !KNOWN_OS.contains(&os) {
            return Err(err(format!(
                "unknown os {os:?} (known: {})",
                KNOWN_OS.join(", ")
            )));
        }
        if !KNOWN_ARCH.contains(&arch) {
            return Err(err(format!(
                "unknown architecture {arch:?} (known: {})",
                KNOWN_ARCH.join(", ")
            )));
        }
        let mut p = Platform::new(os, arch);
        if let Some(v) = parts.get(2) {
            let ok = v.len() <= 8 && v.bytes().all(|b| b.is_ascii_alphanumeric());
            if !ok {
                return Err(err(format!("invalid variant {v:?} (such as v7, v8)")));
            }
            p.variant = Some(v.to_string());
        }
        Ok(p)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        if let Some(v) = &self.os_version {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let p: Platform = "linux/arm64".parse().unwrap();
        let mut c = Platform::new("linux", "arm64");
        c.variant = Some("v8".into());
        assert!(p.matches(&c));
        let want: Platform = "linux/arm/v7".parse().unwrap();
        let mut v6 = Platform::new("linux", "arm");
        v6.variant = Some("v6".into());
        assert!(!want.matches(&v6));
        for bad in [
            "linux",
            "linux/amd46",
            "linx/amd64",
            "linux/arm/v7/x",
            "linux//v7",
        ] {
            let e = bad.parse::<Platform>().unwrap_err().to_string();
            assert!(e.contains("expected os/arch"), "{bad}: {e}");
        }
    }
}
