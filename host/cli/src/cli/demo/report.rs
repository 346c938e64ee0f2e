//! The demo's summary table, checked against the plan: every agent's
//! result must be the planned verdict, or Pending for one never answered
//! (or answered too late).

use super::DemoArgs;
use super::plan::Plan;
use super::reviewer::Reviewed;
use approval_host::{ApprovalSink, Decision};
use std::time::Duration;

/// How one agent's wait ended.
pub(super) struct AgentOutcome {
    pub(super) agent: usize,
    pub(super) decision: Decision,
    pub(super) waited: Duration,
}

/// Prints the run's summary; fails on a wrong verdict, a missing result or
/// a waiter left behind.
pub(super) async fn summarize(
    args: &DemoArgs,
    sink: &ApprovalSink,
    plans: &[Plan],
    results: &[AgentOutcome],
    peak: usize,
    reviewed: &Reviewed,
    elapsed: Duration,
) -> anyhow::Result<()> {
    let count = |d: Decision| results.iter().filter(|r| r.decision == d).count();
    let mut wrong = 0usize;
    let mut late = 0usize;
    for r in results {
        match (plans[r.agent].verdict, r.decision) {
            (Some((planned, _)), got) if got == planned => {}
            (Some(_), Decision::Pending) => late += 1,
            (None, Decision::Pending) => {}
            _ => wrong += 1,
        }
    }
    let mut waits: Vec<Duration> = results.iter().map(|r| r.waited).collect();
    waits.sort();
    let pct = |p: f64| {
        waits
            .get(((waits.len() as f64 * p) as usize).min(waits.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let stats = sink.stats().await;

    println!(
        "approval-sink demo: {} agents, timeout {} ms, {:.1} s",
        args.agents,
        args.timeout_ms,
        elapsed.as_secs_f64()
    );
    println!("+---------------------------------+-------------+");
    let row = |k: &str, v: String| println!("| {k:<31} | {v:>11} |");
    row("approved", count(Decision::Approved).to_string());
    row("denied", count(Decision::Denied).to_string());
    row("timed out -> Pending", count(Decision::Pending).to_string());
    row(
        "answered before the wait began",
        stats.early_hits.to_string(),
    );
    row("verdict arrived too late", late.to_string());
    row("wrong verdicts", wrong.to_string());
    row(
        "p50 wait",
        format!("{:.1} ms", pct(0.50).as_secs_f64() * 1e3),
    );
    row(
        "p99 wait",
        format!("{:.1} ms", pct(0.99).as_secs_f64() * 1e3),
    );
    row("peak waiters", peak.to_string());
    row(
        "events published (protobuf)",
        reviewed.published.to_string(),
    );
    row("policy invalidations", stats.invalidations.to_string());
    if args.signed {
        row(
            "forged/unsigned rejected",
            (stats.unauthenticated + reviewed.refused_at_gateway).to_string(),
        );
    }
    row(
        "malformed / duplicates",
        format!("{} / {}", stats.malformed, stats.duplicates),
    );
    row("waiters left", sink.waiter_count().to_string());
    row(
        "component size",
        format!("{} KiB", sink.component_size() / 1024),
    );
    println!("+---------------------------------+-------------+");
    if wrong > 0 || results.len() != args.agents || sink.waiter_count() != 0 {
        anyhow::bail!(
            "the demo saw {wrong} wrong verdicts and {} waiters left",
            sink.waiter_count()
        );
    }
    Ok(())
}
