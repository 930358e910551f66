//! Buck2's project root and cells, from `.buckconfig` files, as Buck2 resolves them: the
//! project root is the highest directory with a `.buckconfig`; a cell's `[cells]` entries are
//! joined onto that cell's path, and none may leave the project root.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};

/// The `[cells]` section of a `.buckconfig` (name -> path as written).
pub fn cells_section(buckconfig: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(buckconfig)
        .with_context(|| format!("reading {}", buckconfig.display()))?;
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        if section == "cells" {
            let Some((k, v)) = line.split_once('=') else {
                bail!(
                    "{}: [cells] line {line:?}: expected NAME = PATH",
                    buckconfig.display()
                );
            };
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(out)
}

/// The highest directory at or above `dir` that has a `.buckconfig`.
pub fn project_root(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut found = None;
    for d in dir.ancestors() {
        if d.join(".buckconfig").is_file() {
            found = Some(d.to_path_buf());
        }
    }
    found.with_context(|| format!("no .buckconfig at or above {}", dir.display()))
}

/// `base` joined with `rel`, lexically, as a path relative to the project root; an error if
/// it leaves the root (Buck2: "expected ... to be a relative path").
fn join_normalized(base: &Path, rel: &str) -> anyhow::Result<PathBuf> {
    let mut parts: Vec<String> = base
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    bail!(
                        "cell path {rel:?} (from {}) leaves the project root",
                        base.display()
                    );
                }
            }
            _ => bail!("cell path {rel:?} must be relative"),
        }
    }
    Ok(parts.iter().collect())
}

/// The cells Buck2 sees from the project containing `dir`, each as a path relative to the
/// project root, with the cell whose directory is `dir` (if any) named by the alias its own
/// `.buckconfig` gives `.` (e.g. `root`). Returns (project root, cells).
pub fn resolve_cells(dir: &Path) -> anyhow::Result<(PathBuf, BTreeMap<String, PathBuf>)> {
    let root = project_root(dir)?;
    let mut cells = BTreeMap::new();
    for (name, path) in cells_section(&root.join(".buckconfig"))? {
        cells.insert(name, join_normalized(Path::new(""), &path)?);
    }
    // Each cell's own .buckconfig adds aliases relative to the cell.
    let declared: Vec<(String, PathBuf)> = cells.clone().into_iter().collect();
    for (_, cell_path) in declared {
        let config = root.join(&cell_path).join(".buckconfig");
        if cell_path.as_os_str().is_empty() || !config.is_file() {
            continue;
        }
        for (name, path) in cells_section(&config)? {
            let resolved = join_normalized(&cell_path, &path)
                .with_context(|| format!("in {}", config.display()))?;
            cells.entry(name).or_insert(resolved);
        }
    }
    Ok((root, cells))
}
