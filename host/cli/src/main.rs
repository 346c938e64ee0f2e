//! `approval-sink`: the approval-sink CLI.
//!
//! `demo` runs simulated agents against a simulated reviewer on the embedded
//! component; `inspect` describes the embedded (or a given) component;
//! `export` writes an embedded component out for other hosts; `gateway`,
//! `wait`, `resolve` and `invalidate` play a gRPC gateway and its clients.

mod cli;

use clap::{Parser, Subcommand};
use cli::exit::Exit;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Wait for human approvals without polling: a sandboxed WebAssembly sink.
#[derive(Parser)]
#[command(name = "approval-sink", version, about)]
struct Args {
    /// Load this `approval-registry` component instead of the embedded one
    /// (used by `demo`, `inspect`, `export` and `wait`).
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
    /// Run the single-node gateway (InvalidationService + ReviewService) over
    /// its durable log (or --in-memory, or --nats).
    Gateway(cli::gateway::GatewayArgs),
    /// Wait for one approval through a gateway; exit 0 approved, 1 denied,
    /// 2 pending (timed out), 3 not served (bad arguments, credentials or
    /// TLS refused, or the gateway never reached during the whole wait).
    Wait(cli::wait::WaitArgs),
    /// Act as a reviewer: publish a verdict to a gateway; exit 0 published
    /// (or the same verdict already stands), 3 not served, 4 a different
    /// verdict already stands.
    Resolve(cli::resolve::ResolveArgs),
    /// Make a reviewer key pair: ID.key (PKCS#8 PEM, mode 0600) and ID.pub.
    Keygen(cli::keygen::KeygenArgs),
    /// Publish a policy invalidation to a gateway.
    Invalidate(cli::invalidate::InvalidateArgs),
    /// Make the gateway's two bearer tokens: DIR/review.token and
    /// DIR/subscribe.token (mode 0600), and print the flags that use them.
    Tokens(cli::tokens::TokensArgs),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: `wait 2>log` gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // `--help` and `--version` are not errors; anything else is a
            // usage error (clap's own exit code 2 would read as "pending").
            let code = if e.use_stderr() {
                Exit::NotServed
            } else {
                Exit::Success
            };
            let _ = e.print();
            std::process::exit(code.code())
        }
    };
    let done = |result: anyhow::Result<()>| result.map(|()| Exit::Success);
    let result = match args.command {
        Command::Demo(demo) => done(cli::demo::run(demo, args.component)),
        Command::Inspect => done(cli::inspect::run(args.component)),
        Command::Export(export) => done(cli::export::run(export, args.component)),
        Command::Gateway(gateway) => done(cli::gateway::serve(gateway)),
        Command::Wait(wait) => cli::wait::wait(wait, args.component),
        Command::Resolve(resolve) => cli::resolve::resolve(resolve),
        Command::Keygen(keygen) => done(cli::keygen::run(keygen)),
        Command::Invalidate(invalidate) => done(cli::invalidate::invalidate(invalidate)),
        Command::Tokens(tokens) => done(cli::tokens::run(tokens)),
    };
    match result {
        Ok(exit) => std::process::exit(exit.code()),
        Err(e) => {
            // Errors quote gateways and files: one line, whatever they say.
            eprintln!("error: {}", cli::output::text(&format!("{e:#}")));
            std::process::exit(Exit::NotServed.code())
        }
    }
}
