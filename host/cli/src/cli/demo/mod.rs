//! `approval-sink demo`: the main job, end to end on one sink.
//!
//! Thousands of simulated agents each ask for approval and wait. A simulated
//! reviewer decides most requests after a human-like delay and sends its
//! verdicts the way a gateway does: sequenced `InvalidationEvent`s, encoded
//! as length-delimited protobuf frames, fed to the sink in chunks (so the
//! stream path through the component is what carries them). A few verdicts
//! arrive before their agent starts waiting (the early-verdict cache), a few
//! policy invalidations are mixed in, and the rest of the requests are never
//! answered, so their agents fall back to `Pending` at their timeout.
//!
//! Every agent's result is checked against the reviewer's plan: a wrong
//! verdict (or a `Denied` nobody sent) fails the demo (exit code 3).
//!
//! Files: `mod.rs` the arguments and the run; `plan.rs` the seeded plan;
//! `transport.rs` how verdicts reach the sink; `reviewer.rs` the reviewer
//! and the attacker; `report.rs` the summary.

mod plan;
mod report;
mod reviewer;
mod transport;

use approval_host::{ApprovalSink, ReviewerKey};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use plan::plan;
use report::{AgentOutcome, summarize};
use reviewer::{Keys, review, sign_all};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct DemoArgs {
    /// Simulated agents, each waiting on its own approval request.
    #[arg(long, default_value_t = 4000)]
    agents: usize,
    /// How long an agent waits before falling back to Pending.
    #[arg(long, default_value = "1500", value_name = "MS")]
    timeout_ms: u64,
    /// Share of requests the reviewer never answers (they time out).
    #[arg(long, default_value_t = 0.1)]
    unanswered: f64,
    /// Share of answered requests that are denied.
    #[arg(long, default_value_t = 0.25)]
    deny: f64,
    /// Seed of the simulation's randomness.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Go through a gRPC gateway: the reviewer publishes with
    /// `ReviewService.Resolve` and the sink subscribes with
    /// `InvalidationService.Subscribe`. `local` starts one in-process on
    /// 127.0.0.1; otherwise a URL such as `http://127.0.0.1:50051`.
    #[arg(long, value_name = "URL|local", conflicts_with = "nats")]
    gateway: Option<String>,
    /// With `--gateway URL`: the directory `approval-sink tokens` wrote the
    /// gateway's two tokens to.
    #[arg(long, value_name = "DIR", requires = "gateway")]
    tokens: Option<PathBuf>,
    /// Go through NATS JetStream, the shared log of many machines: the
    /// reviewer publishes through an in-process gateway over the stream
    /// (first verdict per id wins in the log; with --signed it verifies
    /// before publishing) and the sink consumes the stream directly.
    /// `local` starts a `nats-server -js` on a free loopback port with a
    /// temporary store; otherwise a URL such as `nats://127.0.0.1:4222`.
    #[arg(long, value_name = "URL|local")]
    nats: Option<String>,
    /// The reviewer signs every verdict with an Ed25519 key the sink
    /// trusts, and an attacker publishes an approval for every request
    /// first: unsigned, signed by its own key, or forged in the reviewer's
    /// name. The sink must reject them all (`wrong verdicts 0`).
    #[arg(long)]
    signed: bool,
}

/// Runs the simulation and prints its summary; fails when an agent's
/// outcome is not what the plan says it must be or a waiter is left.
pub fn run(args: DemoArgs, component: Option<PathBuf>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(demo(args, component))
}

async fn demo(args: DemoArgs, component: Option<PathBuf>) -> anyhow::Result<()> {
    let keys = if args.signed {
        Some(Arc::new(Keys {
            reviewer: ReviewerKey::generate("demo-reviewer")?,
            attacker: ReviewerKey::generate("mallory")?,
        }))
    } else {
        None
    };
    // The sink and a NATS gateway trust the reviewer's key (never the
    // attacker's).
    let trusted: Vec<_> = keys.iter().map(|k| k.reviewer.trusted()).collect();
    let mut builder = ApprovalSink::builder().trusted_keys(trusted.clone());
    if let Some(path) = component {
        builder = builder.component_file(path);
    }
    let sink = builder.build()?;
    let transport = transport::connect(&args, &sink, &trusted).await?;
    let plans = Arc::new(plan(&args));
    let signed = keys.as_deref().map(|keys| sign_all(keys, &plans));
    let timeout = Duration::from_millis(args.timeout_ms);
    let start = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();

    for (agent, p) in plans.iter().copied().enumerate() {
        let sink = sink.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until((start + p.starts).into()).await;
            let began = Instant::now();
            let decision = sink
                .wait_for_approval(format!("req-{agent}"), timeout)
                .await;
            let _ = tx.send(AgentOutcome {
                agent,
                decision,
                waited: began.elapsed(),
            });
        });
    }
    drop(tx);
    let reviewer = tokio::spawn(review(
        transport.reviewer.clone(),
        Arc::clone(&plans),
        start,
        signed,
    ));

    let bar = ProgressBar::new(args.agents as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} agents done  {msg}",
        )?
        .progress_chars("=> "),
    );
    let mut results = Vec::with_capacity(args.agents);
    let mut peak = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Some(r) => { results.push(r); bar.inc(1); }
                None => break,
            },
            _ = tick.tick() => {
                let waiting = sink.waiter_count();
                peak = peak.max(waiting);
                bar.set_message(format!("waiting now: {waiting}"));
            }
        }
    }
    bar.finish_and_clear();
    let reviewed = reviewer.await?;
    summarize(
        &args,
        &sink,
        &plans,
        &results,
        peak,
        &reviewed,
        start.elapsed(),
    )
    .await
}
