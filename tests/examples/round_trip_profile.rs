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
//! `N=...` sets the number of round trips (default 1,000,000).

use approval_host::{ApprovalSink, Decision};
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
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
