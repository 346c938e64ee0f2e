//! A fixed ingest workload for instruction counts, which unlike wall-clock
//! rates do not drift with the VM (BENCHMARKS.md, "Levers tried"): 100
//! `ingest-frames` calls of 10,000 `ApprovalResolved` frames, no waiters, so
//! every verdict goes into the early-verdict cache.
//!
//! ```sh
//! cargo build --release -p approval-tests --example ingest_instructions
//! NO_INGEST=1 perf stat -e instructions:u target/release/examples/ingest_instructions
//! perf stat -e instructions:u target/release/examples/ingest_instructions
//! ```
//!
//! The difference of the two counts over 1,000,000 is the cost per frame.
//! Where `perf stat` has no instruction counter (this project's VM),
//! `valgrind --tool=callgrind` gives the same counts, slower. The example
//! also prints the ingest calls' own rate (wall clock, for A/B runs).
//! `NO_INGEST=1` builds the same frames without ingesting them (compile,
//! instantiate and encoding cost). `REUSE_IDS=1` sends the same 10,000
//! request ids in every call (each verdict overwrites a cached one) instead
//! of one id per verdict. `WAITERS=1` registers a wait on every id before
//! its call, so each verdict resolves a waiter (the "resolving" bench row).
//! `APPROVAL_SINK_PERFMAP=1 perf record` names the guest's functions.

use approval_host::{ApprovalSink, SinkConfig};
use approval_tests::events::approvals;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let ingest = std::env::var_os("NO_INGEST").is_none();
    let reuse_ids = std::env::var_os("REUSE_IDS").is_some();
    let waiters = std::env::var_os("WAITERS").is_some();
    let sink = ApprovalSink::builder()
        .config(SinkConfig {
            verdict_cache_capacity: 10_000,
            ..SinkConfig::default()
        })
        .build()?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let mut ingest_time = Duration::ZERO;
    for round in 0..100u64 {
        let seq0 = round * 10_000 + 1;
        let id_from = if reuse_ids { 0 } else { seq0 as usize };
        let bytes = approvals(10_000, seq0, id_from);
        let waits: Vec<_> = if waiters {
            (0..10_000)
                .map(|i| sink.wait(format!("req-{}", id_from + i), Duration::from_secs(3600)))
                .collect()
        } else {
            Vec::new()
        };
        if ingest {
            // Queued registrations go first, outside the timed part.
            anyhow::ensure!(sink.waiter_count() == waits.len());
            let t = std::time::Instant::now();
            let report = sink.ingest_bytes(&bytes)?;
            ingest_time += t.elapsed();
            anyhow::ensure!(report.events == 10_000, "every frame applies");
            for w in waits {
                anyhow::ensure!(rt.block_on(w).is_ok(), "resolved");
            }
        }
    }
    if ingest {
        // Wall-clock, for A/B runs; the instruction count is what the
        // docs above compare.
        let rate = 1_000_000.0 / ingest_time.as_secs_f64();
        println!("ingest: {:.2} M frames/s", rate / 1e6);
    }
    Ok(())
}
