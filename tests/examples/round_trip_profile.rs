//! A fixed round-trip workload to profile (BENCHMARKS.md, #15): `n` times
//! `wait` + `deliver` + `.await` on one sink, on a current-thread runtime,
//! the bench's round-trip row without the native side.
//!
//! ```sh
//! cargo build --release -p approval-tests --example round_trip_profile
//! APPROVAL_SINK_PERFMAP=1 perf record -g target/release/examples/round_trip_profile
//! perf stat -e instructions:u target/release/examples/round_trip_profile
//! ```
//!
//! `N=...` sets the number of round trips (default 1,000,000). `STORM=1`
//! profiles the bench's storm instead: ten times, 100,000 `wait_for_approval`
//! tasks with a 10 ms timeout spawned on a two-worker runtime.

use approval_host::{ApprovalSink, Decision};
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    if std::env::var_os("STORM").is_some() {
        return storm();
    }
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    rt.block_on(async {
        let sink = ApprovalSink::new();
        let ids: Vec<String> = (0..n).map(|i| format!("req-{i}")).collect();
        let t = Instant::now();
        for id in &ids {
            let wait = sink.wait(id, Duration::from_secs(30));
            sink.deliver(id, Decision::Approved)?;
            anyhow::ensure!(wait.await.is_ok());
        }
        let per = t.elapsed().as_nanos() as f64 / n as f64;
        println!("{n} round trips: {per:.0} ns each");
        Ok(())
    })
}

fn storm() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()?;
    rt.block_on(async {
        let sink = ApprovalSink::builder()
            .config(approval_host::SinkConfig {
                max_waiters: 200_000,
                ..approval_host::SinkConfig::default()
            })
            .build()?;
        for _ in 0..10 {
            let t = Instant::now();
            let tasks: Vec<_> = (0..100_000)
                .map(|i| {
                    tokio::spawn(
                        sink.wait_for_approval(format!("req-{i}"), Duration::from_millis(10)),
                    )
                })
                .collect();
            for task in tasks {
                anyhow::ensure!(task.await? == Decision::Pending);
            }
            println!("storm: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        }
        Ok(())
    })
}
