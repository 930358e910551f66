//! What `--base` names, and resolving it to a [`Base`] for one platform.

use std::path::PathBuf;

use crate::image::base::{Base, layout, scratch, static_base};
use crate::oci::Platform;
use crate::oci::digest::{DigestParseError, Sha256Digest};

/// What `--base` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseSpec {
    Static,
    Scratch,
    Layout {
        dir: PathBuf,
        digest: Option<Sha256Digest>,
    },
}

impl BaseSpec {
    /// Parses `static`, `scratch`, or `DIR[@sha256:…]`.
    pub fn parse(s: &str) -> Result<BaseSpec, DigestParseError> {
        match s {
            "static" => Ok(BaseSpec::Static),
            "scratch" => Ok(BaseSpec::Scratch),
            _ => match s.rsplit_once('@') {
                Some((dir, d)) if d.starts_with("sha256:") => Ok(BaseSpec::Layout {
                    dir: PathBuf::from(dir),
                    digest: Some(d.parse()?),
                }),
                _ => Ok(BaseSpec::Layout {
                    dir: PathBuf::from(s),
                    digest: None,
                }),
            },
        }
    }

    /// Resolves the base for one platform.
    pub fn resolve(&self, platform: &Platform, name: Option<&str>) -> anyhow::Result<Base> {
        match self {
            BaseSpec::Static if crate::layer::binary::is_windows(platform) => anyhow::bail!(
                "the built-in `static` base is a Linux base (/etc/passwd, CA roots in /etc/ssl), \
                 and the image platform is {platform}; a Windows image needs a Windows base: \
                 pass --base with one pinned by digest (such as \
                 mcr.microsoft.com/windows/nanoserver:ltsc2022@sha256:…), or --base scratch"
            ),
            BaseSpec::Static => Ok(static_base::base(platform)),
            BaseSpec::Scratch => Ok(scratch(platform)),
            BaseSpec::Layout { dir, digest } => {
                layout::read_base(dir, digest.as_ref(), platform, name)
            }
        }
    }
}
