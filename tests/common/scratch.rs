//! A scratch directory to run `rko` in, with no registry credentials and none of the
//! environment that would change what rko does (KO_DOCKER_REPO, RKO_REMOTE_CACHE,
//! RKO_ATTACH).

use std::path::PathBuf;
use std::process::{Command, Output};

pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let s = Scratch {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(s.path("docker")).unwrap();
        s
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Runs rko with `args` here.
    pub fn rko(&self, args: &[&str]) -> Output {
        Command::new(super::RKO)
            .args(args)
            .current_dir(self.dir.path())
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("REGISTRY_AUTH_FILE", self.path("docker/none.json"))
            .env_remove("KO_DOCKER_REPO")
            .env_remove("RKO_REMOTE_CACHE")
            .env_remove("RKO_ATTACH")
            .output()
            .unwrap()
    }

    /// Runs rko, asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.rko(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "rko {args:?} failed:\n{err}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}
