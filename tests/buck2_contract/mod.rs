//! A recorded contract of Buck2's rule API, for testing rules_ko's Buck2 rules where
//! Buck2 itself cannot run. It evaluates the real `.bzl` and BUCK files with the Starlark
//! interpreter Buck2 embeds (the `starlark` crate), in Buck2's dialect, and enforces the
//! rules Buck2 enforces (see tests/buck2/CONTRACT.md for the list and the Buck2 version).
//! `build` then runs the registered actions for real, so what the rules ask of rko is
//! checked by rko itself.
#![allow(dead_code)]

pub mod config;
pub mod engine;
pub mod exec;
pub mod globals;
pub mod values;

#[allow(unused_imports)]
pub use engine::{ActionKind, Analysis, Config, Project};
#[allow(unused_imports)]
pub use exec::{Builder, run_info};
#[allow(unused_imports)]
pub use values::{ArtifactData, TargetLabel};

use std::path::{Path, PathBuf};

/// The rules_ko checkout.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A Buck2 project in a new directory: `root_cell` copied to its root, the rules_ko
/// checkout as cell `rules_ko`, the recorded prelude as `prelude`, and as `toolchains` the
/// root cell's own toolchains/ or else the tests' (tests/buck2/toolchains), with `rko` (the
/// binary under test) placed in it.
pub struct TestProject {
    pub dir: tempfile::TempDir,
    pub project: Project,
}

impl TestProject {
    pub fn new(root_cell: &Path, rko: &Path) -> TestProject {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(root_cell, dir.path());
        let repo = repo_root();
        std::os::unix::fs::symlink(&repo, dir.path().join("rules_ko")).unwrap();
        std::os::unix::fs::symlink(repo.join("tests/buck2/prelude"), dir.path().join("prelude"))
            .unwrap();
        // A project with its own toolchains cell (the example) keeps it.
        let toolchains = dir.path().join("toolchains");
        if !toolchains.join("BUCK").exists() {
            copy_tree(&repo.join("tests/buck2/toolchains"), &toolchains);
        }
        std::fs::copy(rko, toolchains.join("rko")).unwrap();
        let project = Project::new(
            dir.path(),
            &[
                ("root", PathBuf::from(".")),
                ("rules_ko", PathBuf::from("rules_ko")),
                ("prelude", PathBuf::from("prelude")),
                ("toolchains", PathBuf::from("toolchains")),
            ],
        );
        TestProject { dir, project }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

pub fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dest.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}
