//! Building: runs the actions that produce the requested artifacts, inputs first, in the
//! project root (as Buck2's local executor does), and `buck2 run` of a RunInfo.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::rc::Rc;

use anyhow::{Context, anyhow, bail};
use sha2::Digest;
use starlark::values::ValueLike;
use starlark::values::list::ListRef;

use super::engine::{Action, ActionKind, Analysis, Project};
use super::values::*;

/// What a build ran, for assertions.
#[derive(Default)]
pub struct Builder {
    built: HashSet<String>,
    /// Environment added to every action (as a Buck2 user's action environment would be).
    pub env: Vec<(String, String)>,
    /// (category, identifier) of each action run, in order.
    pub ran: Vec<(String, Option<String>)>,
}

impl Builder {
    /// A builder whose Go builds share the tests' Go build cache.
    pub fn with_go_cache(dir: &Path) -> Builder {
        Builder {
            env: vec![("GOCACHE".into(), dir.display().to_string())],
            ..Builder::default()
        }
    }

    /// Builds `artifacts` from the actions of every analysis made so far.
    pub fn build(&mut self, project: &Project, artifacts: &[ArtifactData]) -> anyhow::Result<()> {
        let mut producers: HashMap<String, (Rc<Analysis>, usize)> = HashMap::new();
        for a in project.analyses() {
            for (i, act) in a.actions.iter().enumerate() {
                for o in &act.outputs {
                    producers.insert(o.path.clone(), (a.clone(), i));
                }
            }
        }
        for a in artifacts {
            self.build_one(project, &producers, a)?;
        }
        Ok(())
    }

    fn build_one(
        &mut self,
        project: &Project,
        producers: &HashMap<String, (Rc<Analysis>, usize)>,
        a: &ArtifactData,
    ) -> anyhow::Result<()> {
        if a.is_source() {
            if !project.root.join(&a.path).exists() {
                bail!("source {} is missing", a.path);
            }
            return Ok(());
        }
        if self.built.contains(&a.path) {
            return Ok(());
        }
        let (analysis, i) = producers
            .get(&a.path)
            .ok_or_else(|| anyhow!("no action produces {}", a.path))?;
        let action = &analysis.actions[*i];
        for input in &action.inputs {
            self.build_one(project, producers, input)?;
        }
        run_action(&project.root, action, &self.env).with_context(|| {
            format!(
                "action {} {:?} of {}",
                action.category, action.identifier, analysis.label
            )
        })?;
        self.ran
            .push((action.category.clone(), action.identifier.clone()));
        for o in &action.outputs {
            if !project.root.join(&o.path).exists() {
                bail!(
                    "action {} of {} did not produce its output {}",
                    action.category,
                    analysis.label,
                    o.short_path
                );
            }
            self.built.insert(o.path.clone());
        }
        Ok(())
    }
}

fn run_action(root: &Path, action: &Action, extra_env: &[(String, String)]) -> anyhow::Result<()> {
    for o in &action.outputs {
        let p = root.join(&o.path);
        if p.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else if p.exists() {
            std::fs::remove_file(&p)?;
        }
        std::fs::create_dir_all(p.parent().unwrap())?;
    }
    let out = root.join(&action.outputs[0].path);
    match &action.kind {
        ActionKind::Run { cmd, env, .. } => {
            let argv = cmd.render(None);
            let program = if argv[0].contains('/') && !argv[0].starts_with('/') {
                root.join(&argv[0]).display().to_string()
            } else {
                argv[0].clone()
            };
            let o = Command::new(&program)
                .args(&argv[1..])
                .envs(extra_env.iter().cloned())
                .envs(env)
                .current_dir(root)
                .output()
                .with_context(|| format!("starting {program}"))?;
            if !o.status.success() {
                bail!(
                    "{} exited with {}:\n{}{}",
                    argv.join(" "),
                    o.status,
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
        ActionKind::Write {
            content,
            executable,
        } => {
            std::fs::write(&out, content)?;
            set_executable(&out, *executable)?;
        }
        ActionKind::Download {
            url,
            sha256,
            executable,
        } => {
            let path = url.strip_prefix("file://").ok_or_else(|| anyhow!("download_file: the contract fetches file:// URLs only (no network here), found {url}"))?;
            let bytes = std::fs::read(path)?;
            let got = hex::encode(sha2::Sha256::digest(&bytes));
            if &got != sha256 {
                bail!("download_file {url}: sha256 mismatch: expected {sha256}, got {got}");
            }
            std::fs::write(&out, bytes)?;
            set_executable(&out, *executable)?;
        }
        ActionKind::Copy { src } => {
            std::fs::copy(root.join(&src.path), &out)?;
        }
    }
    Ok(())
}

fn set_executable(p: &Path, executable: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// The RunInfo command line of an analysis, with absolute paths as `buck2 run` renders it,
/// and the artifacts it needs (arguments and hidden inputs).
pub fn run_info(
    project: &Project,
    analysis: &Analysis,
) -> anyhow::Result<(Vec<String>, Vec<ArtifactData>)> {
    analysis.with_providers(|ps| {
        let list = ListRef::from_value(ps).unwrap();
        let run = list
            .iter()
            .find(|p| provider_instance(*p).is_some_and(|(pc, _)| pc.name() == "RunInfo"))
            .ok_or_else(|| anyhow!("{} has no RunInfo: buck2 run needs one", analysis.label))?;
        let args = field(run, "args")
            .unwrap()
            .downcast_ref::<CmdArgs>()
            .unwrap()
            .clone();
        let (inputs, _) = args.artifacts();
        Ok((args.render(Some(&project.root)), inputs))
    })
}
