//! `rko load`: stream an image (for an index, the image of one platform) into the local
//! Docker daemon or podman with `docker load` / `podman load`, tagged as asked.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use crate::cli::tarball::Sources;
use crate::platform::Platform;
use crate::reference::parse_tag;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tool {
    /// docker when its daemon answers, else podman.
    Auto,
    Docker,
    Podman,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub sources: Sources,
    /// A tag for the loaded image, NAME[:TAG]. Repeatable; at least one.
    #[arg(long = "tag", value_name = "NAME[:TAG]", required = true)]
    pub tags: Vec<String>,
    /// For an index: the platform to load (default linux/amd64, else the first).
    #[arg(long)]
    pub platform: Option<Platform>,
    /// Which tool loads the image.
    #[arg(long, value_enum, default_value = "auto")]
    pub tool: Tool,
    /// How to reach the registry of a shallow base's blobs.
    #[command(flatten)]
    pub registry: crate::cli::push::RegistryArgs,
}

fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Picks the tool: docker if its daemon answers, else podman.
pub fn pick(tool: Tool) -> Result<&'static str> {
    Ok(match tool {
        Tool::Docker => "docker",
        Tool::Podman => "podman",
        Tool::Auto if works("docker", &["info"]) => "docker",
        Tool::Auto if works("podman", &["--version"]) => "podman",
        Tool::Auto => bail!(
            "neither docker (with a running daemon) nor podman is available: install one, or write a tarball with `rko tarball` instead"
        ),
    })
}

pub fn run(a: LoadArgs) -> Result<()> {
    let tags = a
        .tags
        .iter()
        .map(|t| parse_tag(t))
        .collect::<Result<Vec<_>, _>>()?;
    let (artifact, mut store) = a.sources.load()?;
    a.registry.connect(&mut store)?;
    let program = pick(a.tool)?;
    let mut child = Command::new(program)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running `{program} load`"))?;
    {
        let stdin = child.stdin.take().expect("piped");
        let mut w = std::io::BufWriter::with_capacity(1 << 20, stdin);
        let written = artifact.write_tarball(&store, &tags, a.platform.as_ref(), &mut w);
        let flushed = w.flush();
        if let Err(e) = written {
            let _ = child.kill();
            return Err(e);
        }
        flushed.context("streaming the image to the loader")?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "`{program} load` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("rko: loaded with {program}");
    for t in &tags {
        crate::cli::outln!("{t}");
    }
    Ok(())
}
