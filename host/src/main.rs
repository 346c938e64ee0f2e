//! `approval-sink`: the approval-sink CLI.
//!
//! `demo` runs simulated agents against a simulated reviewer on the embedded
//! component; `inspect` describes the embedded (or a given) component;
//! `export` writes an embedded component out for other hosts.

mod cli;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Wait for human approvals without polling: a sandboxed WebAssembly sink.
#[derive(Parser)]
#[command(name = "approval-sink", version, about)]
struct Args {
    /// Load this `approval-registry` component instead of the embedded one.
    #[arg(long, global = true, value_name = "PATH")]
    component: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulated agents wait for approvals a simulated reviewer sends as
    /// protobuf frames; prints live progress and a summary.
    Demo(cli::demo::DemoArgs),
    /// Print each component's WIT world, imports, exports, size and validity.
    Inspect,
    /// Write an embedded component to a file, for other component hosts.
    Export(cli::export::ExportArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match args.command {
        Command::Demo(demo) => cli::demo::run(demo, args.component),
        Command::Inspect => cli::inspect::run(args.component),
        Command::Export(export) => cli::export::run(export, args.component),
    }
}
