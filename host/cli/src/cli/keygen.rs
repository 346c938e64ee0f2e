//! `approval-sink keygen`: a reviewer key pair, in the formats operators
//! script against: `ID.key` (the Ed25519 private key as PKCS#8 PEM, as
//! `openssl genpkey -algorithm ed25519` writes it; mode 0600) and `ID.pub`
//! (one line: `ID ed25519 BASE64`).

use anyhow::Context;
use approval_host::ReviewerKey;
use clap::Args;
use std::io::Write;
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

/// Creates `path` readable by its owner only, refusing to overwrite a key.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| {
        format!(
            "creating {} (an existing key is never overwritten)",
            path.display()
        )
    })?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}
