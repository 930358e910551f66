//! Loading an image into the local Docker daemon or podman: the tarball streamed into
//! `docker load` / `podman load` (for an index, the image of one platform).

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use crate::archive::{artifact::Artifact, store::BlobStore};
use crate::oci::{Platform, TagRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tool {
    /// docker when its daemon answers, else podman.
    Auto,
    Docker,
    Podman,
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
fn pick(tool: Tool) -> Result<&'static str> {
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

/// Streams `artifact` into the loader `tool` picks, tagged `tags`; returns the program used.
pub fn load(
    artifact: &Artifact,
    store: &BlobStore,
    tags: &[TagRef],
    platform: Option<&Platform>,
    tool: Tool,
) -> Result<&'static str> {
    let program = pick(tool)?;
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
        let written = artifact.write_tarball(store, tags, platform, &mut w);
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
    Ok(program)
}
