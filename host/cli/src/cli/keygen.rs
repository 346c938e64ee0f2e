//! `approval-sink keygen`: a reviewer key pair, in the formats operators
//! script against: `ID.key` (the Ed25519 private key as PKCS#8 PEM, as
//! `openssl genpkey -algorithm ed25519` writes it; mode 0600) and `ID.pub`
//! (one line: `ID ed25519 BASE64`).

use super::secrets::write_private;
use anyhow::Context;
use approval_host::ReviewerKey;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct KeygenArgs {
    /// The key id (the reviewer's name in signed verdicts).
    #[arg(long)]
    id: String,
    /// Where to write the two files (default: the current directory).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

/// Writes a new reviewer key pair into `args.dir` (never over an existing
/// key) and prints the two paths.
pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    let key = ReviewerKey::generate(&args.id)?;
    let private = args.dir.join(format!("{}.key", args.id));
    let public = args.dir.join(format!("{}.pub", args.id));
    write_private(&private, key.to_pem()?.as_bytes())?;
    std::fs::write(&public, format!("{}\n", key.trusted().to_line()))
        .with_context(|| format!("writing {}", public.display()))?;
    println!("{}", private.display());
    println!("{}", public.display());
    Ok(())
}
