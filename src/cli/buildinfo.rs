//! `rko buildinfo BINARY`: the Go build info of a binary, read from its own bytes (no Go
//! toolchain), printed as `go version -m BINARY` prints it, or as JSON.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::buildinfo::{exe, text};
use crate::cli::stdout;

#[derive(Debug, Args)]
pub struct BuildinfoArgs {
    /// The Go binary (ELF, Mach-O or PE).
    pub binary: PathBuf,
    /// Print the build info as JSON instead of `go version -m`'s lines.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: BuildinfoArgs) -> Result<()> {
    let Some(info) = exe::read_file(&a.binary)? else {
        bail!(
            "{} has no Go build info: it is not an executable built by `go build` (Go \
             1.13 or later writes the build info); pass the Go binary itself",
            a.binary.display()
        );
    };
    if a.json {
        stdout::line(serde_json::to_string_pretty(&info)?);
    } else {
        stdout::bytes(text::go_version_m(&a.binary.display().to_string(), &info).as_bytes());
    }
    Ok(())
}
