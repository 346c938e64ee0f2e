//! `approval-sink resolve`: a reviewer's verdict, published through a
//! gateway or (`--nats`) straight into the log with the gateway's checks.

use super::client::{ClientArgs, runtime, trusted_keys};
use super::exit::Exit;
use super::output::{text, value};
use anyhow::Context;
use approval_gateway::{Reviewers, check_resolve, publish_checked};
use approval_grpc::ReviewError;
use approval_host::{Decision, ReviewerKey};
use approval_nats::VerdictConflict;
use approval_proto::ApprovalResolved;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct ResolveArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The approval request to decide.
    #[arg(long)]
    request_id: String,
    /// Approve the request.
    #[arg(long, conflicts_with = "deny", required_unless_present = "deny")]
    approve: bool,
    /// Deny the request.
    #[arg(long)]
    deny: bool,
    /// Who decided (default: the signing key's id, else "cli").
    #[arg(long)]
    reviewer: Option<String>,
    /// Sign the verdict with this reviewer key (`ID.key`, PKCS#8 PEM).
    #[arg(long, value_name = "KEY")]
    signing_key: Option<PathBuf>,
    /// With --nats: a verdict already stored for the id must be signed by
    /// one of these keys (`ID.pub`; repeatable), else it is reported as a
    /// forgery (exit 5). Without it, no stored verdict is checked.
    #[arg(long, value_name = "PUB")]
    trusted_key: Vec<PathBuf>,
}

/// Exit code of `resolve`: 0 published (or the same verdict already
/// stands), 4 a different verdict already stands (it is printed), 5 the
/// stored verdict is a forgery (printed); anything not served is an error
/// (exit 3).
pub fn resolve(args: ResolveArgs) -> anyhow::Result<Exit> {
    let signing = args
        .signing_key
        .as_deref()
        .map(|p| ReviewerKey::read(p).with_context(|| format!("signing key {}", p.display())))
        .transpose()?;
    let reviewer = args
        .reviewer
        .clone()
        .or_else(|| signing.as_ref().map(|k| k.id().to_owned()))
        .unwrap_or_else(|| "cli".to_owned());
    let decision = if args.approve {
        Decision::Approved
    } else {
        Decision::Denied
    };
    let mut verdict = ApprovalResolved {
        request_id: args.request_id.clone(),
        decision: decision as i32,
        reviewer,
        resolved_at_unix_ms: unix_ms(),
        ..Default::default()
    };
    if let Some(key) = &signing {
        key.sign(&mut verdict);
    }
    if let Some(config) = args.client.nats.config() {
        let keys = trusted_keys(&args.trusted_key)?;
        let reviewers =
            Reviewers::new(&keys).map_err(|why| anyhow::anyhow!("--trusted-key: {why}"))?;
        return runtime()?.block_on(resolve_in_log(config, verdict, reviewers));
    }
    anyhow::ensure!(
        args.trusted_key.is_empty(),
        "--trusted-key applies with --nats only (a gateway checks with its own keys)"
    );
    runtime()?.block_on(async {
        let mut client = args.client.review_client().await?;
        match client.resolve(verdict).await {
            Ok(seq) => {
                println!(
                    "{} {} (seq {seq})",
                    value(&args.request_id),
                    decision.as_str_name()
                );
                Ok(Exit::Success)
            }
            Err(ReviewError::AlreadyDecided(standing)) => {
                // The gateway's words: printed so they cannot forge a line.
                println!("{}", text(&standing));
                Ok(Exit::Conflict)
            }
            Err(ReviewError::Forged(why)) => {
                println!("FORGERY: {}", text(&why));
                Ok(Exit::Forgery)
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// `resolve --nats`: the gateway's checks, then its conditional publish
/// straight to the log (development; in a deployment only gateways may
/// publish verdict subjects).
async fn resolve_in_log(
    config: approval_nats::NatsConfig,
    verdict: ApprovalResolved,
    reviewers: Option<Reviewers>,
) -> anyhow::Result<Exit> {
    check_resolve(&verdict).map_err(|status| anyhow::anyhow!("{}", status.message()))?;
    let log = super::nats::open(config).await?;
    match publish_checked(&log, &verdict, reviewers.as_ref()).await {
        Ok(published) => {
            let decision = Decision::try_from(verdict.decision).unwrap_or(Decision::Unspecified);
            println!(
                "{} {} (seq {})",
                value(&verdict.request_id),
                decision.as_str_name(),
                published.seq
            );
            Ok(Exit::Success)
        }
        Err(conflict @ VerdictConflict::Decided { .. }) => {
            println!("{}", text(&conflict.to_string()));
            Ok(Exit::Conflict)
        }
        Err(forgery @ VerdictConflict::Forged { .. }) => {
            println!("FORGERY: {}", text(&forgery.to_string()));
            Ok(Exit::Forgery)
        }
        Err(VerdictConflict::Log(e)) => Err(e.into()),
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
