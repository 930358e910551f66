//! `rko image`: base + layer descriptors + options → config, manifest, descriptor, digest.
//! Reads descriptors only, never layer bytes.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::cli::args::{ImageConfigArgs, write_digest};
use crate::image::base::spec::BaseSpec;
use crate::image::{self, BuiltImage};
use crate::layer::LayerDescriptor;
use crate::oci::{Platform, json};
use crate::output::Outputs;

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The base: `static` (embedded), `scratch`, or an OCI layout DIR[@sha256:…].
    #[arg(long, default_value = "static")]
    pub base: String,
    /// The image platform, os/arch[/variant]: picks the base's image from an index.
    #[arg(long)]
    pub platform: Platform,
    /// A layer descriptor from `rko layer`, in image order: extra layers (`rko layer tar`),
    /// then kodata, then binary, as ko. Repeatable.
    #[arg(long = "layer", value_name = "DESCRIPTOR.json", required = true)]
    pub layers: Vec<PathBuf>,
    #[command(flatten)]
    pub config: ImageConfigArgs,
    /// Where to write the config JSON.
    #[arg(long = "config-out", value_name = "FILE")]
    pub config_out: Option<PathBuf>,
    /// Where to write the manifest JSON.
    #[arg(long = "manifest-out", value_name = "FILE")]
    pub manifest_out: Option<PathBuf>,
    /// Where to write the manifest's descriptor JSON (with platform; for `rko index`).
    #[arg(long = "descriptor-out", value_name = "FILE")]
    pub descriptor_out: Option<PathBuf>,
    /// Where to write the manifest digest (`sha256:…`).
    #[arg(long = "digest-out", value_name = "FILE")]
    pub digest_out: Option<PathBuf>,
}

pub fn run(a: ImageArgs) -> Result<()> {
    if a.config_out.is_none()
        && a.manifest_out.is_none()
        && a.descriptor_out.is_none()
        && a.digest_out.is_none()
    {
        bail!(
            "no output asked for: expected at least one of --config-out, --manifest-out, --descriptor-out, --digest-out"
        );
    }
    let spec = BaseSpec::parse(&a.base)?;
    let base = spec.resolve(&a.platform, a.config.base_name.as_deref())?;
    let layers = a
        .layers
        .iter()
        .map(|p| LayerDescriptor::read(p))
        .collect::<Result<Vec<_>>>()?;
    let built = image::assemble(&base, &layers, &a.config.options()?)?;
    let mut outputs = Outputs::new();
    write_image(&mut outputs, &built, &a)?;
    outputs.commit()?;
    // The digest goes to stdout unless a file takes it (build actions keep their logs quiet).
    if a.digest_out.is_none() {
        crate::cli::stdout::line(built.digest());
    }
    Ok(())
}

fn write_image(outputs: &mut Outputs, built: &BuiltImage, a: &ImageArgs) -> Result<()> {
    if let Some(p) = &a.config_out {
        outputs.write(p, &built.config)?;
    }
    if let Some(p) = &a.manifest_out {
        outputs.write(p, &built.manifest)?;
    }
    if let Some(p) = &a.descriptor_out {
        outputs.write(p, &json::pretty(&built.descriptor))?;
    }
    if let Some(p) = &a.digest_out {
        write_digest(outputs, p, &built.digest())?;
    }
    Ok(())
}
