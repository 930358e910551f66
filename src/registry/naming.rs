//! ko's image naming: how an import path becomes a repository under `KO_DOCKER_REPO`.

use md5::{Digest, Md5};

/// ko's naming strategies.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Naming {
    /// `<repo>/<last element>-<md5 of the lowercased import path>` (ko's default).
    #[default]
    Md5,
    /// `<repo>` itself (`--bare`).
    Bare,
    /// `<repo>/<last element>` (`--base-import-paths`).
    BaseImportPaths,
    /// `<repo>/<lowercased import path>` (`--preserve-import-paths`).
    PreserveImportPaths,
}

/// The repository an image of `import_path` is pushed to under `repo`.
pub fn repository(repo: &str, import_path: &str, naming: Naming) -> String {
    let repo = repo.trim_end_matches('/');
    let ip = import_path.to_lowercase();
    let base = ip.rsplit('/').next().unwrap_or(&ip).to_string();
    match naming {
        Naming::Bare => repo.to_string(),
        Naming::BaseImportPaths => format!("{repo}/{base}"),
        Naming::PreserveImportPaths => format!("{repo}/{ip}"),
        Naming::Md5 => format!("{repo}/{base}-{}", hex::encode(Md5::digest(ip.as_bytes()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kos_strategies() {
        let ip = "github.com/Org/Repo/cmd/App";
        assert_eq!(repository("r.io/x/", ip, Naming::Bare), "r.io/x");
        assert_eq!(
            repository("r.io/x", ip, Naming::BaseImportPaths),
            "r.io/x/app"
        );
        assert_eq!(
            repository("r.io/x", ip, Naming::PreserveImportPaths),
            "r.io/x/github.com/org/repo/cmd/app"
        );
        // md5("github.com/org/repo/cmd/app"), as ko computes it on the lowercased path.
        let md5 = hex::encode(Md5::digest(b"github.com/org/repo/cmd/app"));
        assert_eq!(
            repository("r.io/x", ip, Naming::Md5),
            format!("r.io/x/app-{md5}")
        );
        assert_eq!(md5.len(), 32);
    }
}
