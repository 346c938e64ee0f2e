//! `approval-sink tokens`: the two bearer tokens a gateway requires
//! (SPEC.md §8): `DIR/review.token` for reviewers and `DIR/subscribe.token`
//! for subscribing agents, each 32 random bytes as 64 hex digits, mode
//! 0600, never written over.

use super::secrets::{private_dir, write_private};
use anyhow::Context;
use clap::Args;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The token files, by service.
pub const REVIEW_TOKEN_FILE: &str = "review.token";
/// See [`REVIEW_TOKEN_FILE`].
pub const SUBSCRIBE_TOKEN_FILE: &str = "subscribe.token";

#[derive(Args)]
pub struct TokensArgs {
    /// Where to write the two files (created with mode 0700 when missing).
    #[arg(long)]
    dir: PathBuf,
}

/// A fresh token: 32 bytes from the operating system's random source.
pub fn fresh_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the system's random source: {e}"))?;
    let mut token = String::with_capacity(64);
    for byte in bytes {
        let _ = write!(token, "{byte:02x}");
    }
    Ok(token)
}

/// Writes both tokens into `args.dir` and prints the flags that use them.
pub fn run(args: TokensArgs) -> anyhow::Result<()> {
    private_dir(&args.dir)?;
    let review = args.dir.join(REVIEW_TOKEN_FILE);
    let subscribe = args.dir.join(SUBSCRIBE_TOKEN_FILE);
    for path in [&review, &subscribe] {
        anyhow::ensure!(
            !path.exists(),
            "{} exists; tokens are never overwritten (remove it to make new ones)",
            path.display()
        );
    }
    for path in [&review, &subscribe] {
        write_private(path, format!("{}\n", fresh_token()?).as_bytes())
            .with_context(|| format!("token {}", path.display()))?;
    }
    println!(
        "gateway:     --review-token-file {} --subscribe-token-file {}",
        review.display(),
        subscribe.display()
    );
    println!("reviewers:   --token-file {}", review.display());
    println!("agents:      --token-file {}", subscribe.display());
    Ok(())
}
