//! `approval-sink export`: write an embedded component out for other hosts.

use anyhow::Context;
use approval_host::component::{PLUGIN_COMPONENT, REGISTRY_COMPONENT};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Which world to export.
#[derive(Clone, Copy, ValueEnum)]
pub enum World {
    /// `approval-registry`: sync, batched; what the wasmtime adapter runs.
    Registry,
    /// `approval-plugin`: adds the async `sink` face and the `timer` import.
    Plugin,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The world to write.
    #[arg(long, value_enum, default_value = "registry")]
    world: World,
    /// Output file.
    #[arg(short, long)]
    output: PathBuf,
}

/// Writes the chosen embedded component (or `component`, once it validates)
/// to `args.output`.
pub fn run(args: ExportArgs, component: Option<PathBuf>) -> anyhow::Result<()> {
    let bytes = match component {
        Some(path) => {
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?
        }
        None => match args.world {
            World::Registry => REGISTRY_COMPONENT.to_vec(),
            World::Plugin => PLUGIN_COMPONENT.to_vec(),
        },
    };
    approval_host::inspect::inspect(&bytes).context("the component does not validate")?;
    std::fs::write(&args.output, &bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!("wrote {} ({} bytes)", args.output.display(), bytes.len());
    Ok(())
}
