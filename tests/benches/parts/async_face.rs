//! The `approval-plugin` component's async `sink` face in wasmtime
//! (`run_concurrent` + `call_concurrent`, one component task per wait): round
//! trip, a concurrent timeout storm, and frames through `ingest(stream<u8>)`.

use approval_host::ManualClock;
use approval_tests::plugin::{Decision, Outcome, Plugin};
use std::time::{Duration, Instant};

use approval_tests::time::HOUR_NS;

/// Handles a store may hold: each pending async wait holds its task, its
/// `sleep-until` subtask and waitables, more than wasmtime's default of
/// 100,000 allows for 100k waits.
pub const MAX_HANDLES: usize = 4_000_000;
/// Entries of the store's concurrent resource table: wasmtime's default of
/// 1,000,000 runs out ("resource table has no free keys") at about 100k
/// pending async waits.
pub const MAX_TABLE_ENTRIES: usize = 16_000_000;

async fn plugin(clock: &ManualClock) -> Plugin {
    let mut p = Plugin::embedded(clock.clone()).await.expect("plugin");
    p.store.set_max_component_handles(MAX_HANDLES);
    if let Some(table) = p.store.concurrent_resource_table() {
        table.set_max_capacity(MAX_TABLE_ENTRIES);
    }
    p
}

/// ns per sequential `wait-for-approval` → `resolve` → outcome.
pub async fn round_trip(n: u64) -> f64 {
    let clock = ManualClock::new();
    let mut p = plugin(&clock).await;
    let c = p.calls().expect("calls");
    // A new request id per round trip: a verdict is final (S15).
    let ids: Vec<String> = (0..n).map(|w| format!("req-{w}")).collect();
    let t = Instant::now();
    p.store
        .run_concurrent(async |acc| {
            for (w, id) in (0..n).zip(&ids) {
                let wait = c.wait(acc, w, id, HOUR_NS);
                let deliver = async {
                    c.until_waiters(acc, 1).await;
                    c.resolve(acc, id, Decision::Approved)
                        .await
                        .expect("resolve");
                };
                let (out, ()) = futures::join!(wait, deliver);
                assert_eq!(out, Ok(Outcome::Decided(Decision::Approved)));
            }
        })
        .await
        .expect("run_concurrent");
    t.elapsed().as_nanos() as f64 / n as f64
}

/// ns per sequential `registry.stats` through `call_concurrent`: the floor
/// of one call in the async ABI, of which the round trip above makes at
/// least three (the wait, the harness's `until_waiters` check, the resolve).
pub async fn concurrent_call_floor(n: u64) -> f64 {
    let clock = ManualClock::new();
    let mut p = plugin(&clock).await;
    let c = p.calls().expect("calls");
    let t = Instant::now();
    p.store
        .run_concurrent(async |acc| {
            for _ in 0..n {
                assert_eq!(c.stats(acc).await.waiters, 0);
            }
        })
        .await
        .expect("run_concurrent");
    t.elapsed().as_nanos() as f64 / n as f64
}

/// ms until `n` concurrent waits with a 10 ms timeout have all timed out:
/// the clock is virtual, so it is advanced by 10 ms once 10 ms of real time
/// have passed since the first wait was started (what a real timer does).
pub async fn storm(n: u64) -> f64 {
    let clock = ManualClock::new();
    let mut p = plugin(&clock).await;
    let c = p.calls().expect("calls");
    let t = Instant::now();
    let outs = p
        .store
        .run_concurrent(async |acc| {
            // One request id per wait, as in the native storm.
            let waits = futures::future::join_all(
                (0..n)
                    .map(|w| async move { c.wait(acc, w, &format!("req-{w}"), 10_000_000).await }),
            );
            let tick = async {
                c.until_waiters(acc, n as u32).await;
                tokio::time::sleep(Duration::from_millis(10).saturating_sub(t.elapsed())).await;
                clock.advance(Duration::from_millis(10));
            };
            futures::join!(waits, tick).0
        })
        .await
        .expect("run_concurrent");
    let ms = t.elapsed().as_secs_f64() * 1e3;
    assert!(outs.iter().all(|o| *o == Ok(Outcome::TimedOut)));
    ms
}

/// Frames per second through `sink.ingest(stream<u8>)`, the stream written
/// in 64 KiB chunks; with `waiters`, each frame resolves a batched waiter.
pub async fn ingest_stream(frames: &[u8], count: u64, waiters: bool) -> f64 {
    let clock = ManualClock::new();
    let mut p = plugin(&clock).await;
    let c = p.calls().expect("calls");
    let api = p.api;
    p.store
        .run_concurrent(async |acc| {
            if waiters {
                for w in 0..count {
                    let (r,) = c
                        .register
                        .call_concurrent(acc, (w, format!("req-{}", w + 1), HOUR_NS))
                        .await
                        .expect("register");
                    assert!(r.is_ok());
                }
            }
            let t = Instant::now();
            let applied = c
                .ingest_stream(&api, acc, frames, 64 * 1024)
                .await
                .expect("ingest");
            let rate = count as f64 / t.elapsed().as_secs_f64();
            assert_eq!(applied, count);
            if waiters {
                assert_eq!(c.stats(acc).await.waiters, 0);
            }
            rate
        })
        .await
        .expect("run_concurrent")
}
