//! `approval-sink keygen`: a reviewer key pair, in the formats operators
//! script against: `ID.key` (the Ed25519 private key as PKCS#8 v1 PEM,
//! exactly as `openssl genpkey -algorithm ed25519` writes it; mode 0600)
//! and `ID.pub` (one line: `ID ed25519 BASE64`).
//!
//! The id names both files, so it must be a plain file name: a path
//! (`../../x`) or a hidden name would write somewhere else than `--dir`.
//! Neither file is ever written over: a key pair is made whole or not at
//! all.

use super::secrets::write_private;
use anyhow::Context;
use approval_host::ReviewerKey;
use clap::Args;
use std::io::Write as _;
use std::path::PathBuf;

#[derive(Args)]
pub struct KeygenArgs {
    /// The key id (the reviewer's name in signed verdicts): letters,
    /// digits, `-`, `_` and `.`, not starting with `.`.
    #[arg(long)]
    id: String,
    /// Where to write the two files (default: the current directory).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

/// Whether `id` can name the key files inside `--dir` and nothing else.
fn is_plain_name(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Writes a new reviewer key pair into `args.dir` (never over an existing
/// file) and prints the two paths.
pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        is_plain_name(&args.id),
        "key id {}: use letters, digits, '-', '_' and '.', not starting with '.' (it names the \
         files ID.key and ID.pub in --dir)",
        super::output::value(&args.id)
    );
    let key = ReviewerKey::generate(&args.id)?;
    let private = args.dir.join(format!("{}.key", args.id));
    let public = args.dir.join(format!("{}.pub", args.id));
    for path in [&private, &public] {
        anyhow::ensure!(
            !path.exists(),
            "{} exists; a key is never overwritten (remove it, or choose another --id)",
            path.display()
        );
    }
    // The public line first, created exclusively and on disk before the
    // private key is written; if anything after fails, what this run made
    // goes, so a private key never exists without its public line.
    let mut pub_file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&public)
        .with_context(|| format!("creating {}", public.display()))?;
    let written = writeln!(pub_file, "{}", key.trusted().to_line())
        .and_then(|()| pub_file.sync_all())
        .with_context(|| format!("writing {}", public.display()))
        .and_then(|()| key.to_pem().map_err(Into::into))
        .and_then(|pem| write_private(&private, pem.as_bytes()));
    if let Err(e) = written {
        // `write_private` creates exclusively and removes nothing: a
        // private key that appeared meanwhile is someone else's and stays.
        let _ = std::fs::remove_file(&public);
        return Err(e);
    }
    println!("{}", private.display());
    println!("{}", public.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_plain_name;

    #[test]
    fn only_plain_names_name_key_files() {
        for good in ["alice", "alice-laptop", "bob_2", "ops.eu-1", "A9"] {
            assert!(is_plain_name(good), "{good}");
        }
        for bad in [
            "", ".", "..", ".hidden", "../../x", "a/b", "a\\b", "a b", "al\nice", "ålice",
        ] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }
}
