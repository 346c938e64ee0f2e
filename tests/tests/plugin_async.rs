//! The async `sink` face of the `approval-plugin` component, driven directly
//! in wasmtime with `run_concurrent` + `call_concurrent` and a `ManualClock`
//! behind `timer.sleep-until`. Deterministic: time moves only by `advance`.

use approval_host::ManualClock;
use approval_tests::plugin::{Decision, Outcome, Plugin, SinkError};
use std::time::Duration;

use approval_tests::time::SEC_NS;

#[tokio::test]
async fn async_wait_gets_verdict_delivered_through_registry_resolve() {
    let mut p = Plugin::embedded(ManualClock::new()).await.unwrap();
    let c = p.calls().unwrap();
    let out = p
        .store
        .run_concurrent(async |acc| {
            let deliver = async {
                c.until_waiters(acc, 1).await;
                c.resolve(acc, "req-1", Decision::Approved).await.unwrap();
            };
            futures::join!(c.wait(acc, 1, "req-1", 30 * SEC_NS), deliver).0
        })
        .await
        .unwrap();
    assert_eq!(out, Ok(Outcome::Decided(Decision::Approved)));
}

/// One async wait with `timeout_ns`; once it is registered, the clock moves
/// on by `advance`.
async fn wait_then_advance(timeout_ns: u64, advance: Duration) -> Result<Outcome, SinkError> {
    let clock = ManualClock::new();
    let mut p = Plugin::embedded(clock.clone()).await.unwrap();
    let c = p.calls().unwrap();
    p.store
        .run_concurrent(async |acc| {
            let tick = async {
                c.until_waiters(acc, 1).await;
                clock.advance(advance);
            };
            futures::join!(c.wait(acc, 1, "req-1", timeout_ns), tick).0
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn async_wait_times_out_when_the_clock_passes_its_deadline() {
    let out = wait_then_advance(5 * SEC_NS, Duration::from_secs(5)).await;
    assert_eq!(out, Ok(Outcome::TimedOut));
}

#[tokio::test]
async fn async_fan_out_and_mixed_batched_waiters_get_one_verdict() {
    let mut p = Plugin::embedded(ManualClock::new()).await.unwrap();
    let c = p.calls().unwrap();
    let (outs, batch) = p
        .store
        .run_concurrent(async |acc| {
            let waits =
                futures::future::join_all((0..20).map(|w| c.wait(acc, w, "req-1", 30 * SEC_NS)));
            let deliver = async {
                c.until_waiters(acc, 20).await;
                let (reg,) = c
                    .register
                    .call_concurrent(acc, (99, "req-1".to_string(), 30 * SEC_NS))
                    .await
                    .unwrap();
                assert!(reg.is_ok());
                c.resolve(acc, "req-1", Decision::Denied).await.unwrap()
            };
            futures::join!(waits, deliver)
        })
        .await
        .unwrap();
    assert!(
        outs.iter()
            .all(|o| *o == Ok(Outcome::Decided(Decision::Denied)))
    );
    assert_eq!(
        batch.done.len(),
        1,
        "the batched waiter is reported in the batch"
    );
    assert_eq!(batch.done[0].waiter, 99);
}

#[tokio::test]
async fn async_id_reuse_and_cancel_by_ticket_touch_only_their_own_waiter() {
    let clock = ManualClock::new();
    let mut p = Plugin::embedded(clock.clone()).await.unwrap();
    let c = p.calls().unwrap();
    let (older, newer, cancelled, stats) = p
        .store
        .run_concurrent(async |acc| {
            let older = c.wait(acc, 1, "req-1", SEC_NS);
            let cancelled = c.wait(acc, 3, "req-1", 30 * SEC_NS);
            let driver = async {
                c.until_waiters(acc, 2).await;
                clock.advance(Duration::from_millis(500));
                let newer = c.wait(acc, 2, "req-1", 10 * SEC_NS);
                let rest = async {
                    c.until_waiters(acc, 3).await;
                    clock.advance(Duration::from_millis(500));
                    c.until_waiters(acc, 2).await; // the older one timed out
                    // wasmtime 48 cannot cancel a guest task by dropping the
                    // host future (upstream #11833), so cancel is by ticket.
                    assert!(c.cancel(acc, 3).await);
                    c.resolve(acc, "req-1", Decision::Approved).await.unwrap();
                };
                futures::join!(newer, rest).0
            };
            let (older, cancelled, newer) = futures::join!(older, cancelled, driver);
            (older, newer, cancelled, c.stats(acc).await)
        })
        .await
        .unwrap();
    assert_eq!(older, Ok(Outcome::TimedOut));
    assert_eq!(cancelled, Ok(Outcome::Cancelled));
    assert_eq!(newer, Ok(Outcome::Decided(Decision::Approved)));
    assert_eq!(
        (
            stats.waiters,
            stats.timed_out,
            stats.cancelled,
            stats.delivered
        ),
        (0, 1, 1, 1)
    );
}

#[tokio::test]
async fn async_early_verdict_settles_at_once_and_bad_ids_are_typed_errors() {
    let mut p = Plugin::embedded(ManualClock::new()).await.unwrap();
    let c = p.calls().unwrap();
    let (early, empty, long) = p
        .store
        .run_concurrent(async |acc| {
            c.resolve(acc, "req-1", Decision::Approved).await.unwrap();
            let early = c.wait(acc, 1, "req-1", 30 * SEC_NS).await;
            let empty = c.wait(acc, 2, "", 30 * SEC_NS).await;
            let long = c.wait(acc, 3, &"x".repeat(300), 30 * SEC_NS).await;
            (early, empty, long)
        })
        .await
        .unwrap();
    assert_eq!(early, Ok(Outcome::Decided(Decision::Approved)));
    assert_eq!(empty, Err(SinkError::RequestIdEmpty));
    assert_eq!(long, Err(SinkError::RequestIdTooLong(300)));
}

#[tokio::test]
async fn async_duration_max_timeout_is_capped_and_times_out() {
    let out = wait_then_advance(u64::MAX, Duration::from_secs(24 * 3600)).await;
    assert_eq!(out, Ok(Outcome::TimedOut));
}

#[tokio::test]
async fn async_malformed_verdicts_resolve_nobody_and_are_counted() {
    use approval_tests::events::{stream, verdict_event};
    let mut p = Plugin::embedded(ManualClock::new()).await.unwrap();
    let c = p.calls().unwrap();
    let (out, report, stats) = p
        .store
        .run_concurrent(async |acc| {
            let driver = async {
                c.until_waiters(acc, 1).await;
                let bad = stream(&[
                    verdict_event(1, "req-1", 3),
                    verdict_event(2, "req-1", 0),
                    verdict_event(3, "req-1", 9),
                ]);
                let report = c.ingest(acc, bad).await;
                assert_eq!(c.stats(acc).await.waiters, 1, "nobody resolved");
                c.ingest(acc, stream(&[verdict_event(4, "req-1", 1)])).await;
                report
            };
            let (out, report) = futures::join!(c.wait(acc, 1, "req-1", 30 * SEC_NS), driver);
            (out, report, c.stats(acc).await)
        })
        .await
        .unwrap();
    assert_eq!(out, Ok(Outcome::Decided(Decision::Approved)));
    assert_eq!(report.rejected, 3);
    assert_eq!(stats.malformed, 3);
    assert_eq!(stats.last_seq, 4);
}

#[tokio::test]
async fn async_ingest_stream_decodes_frames_split_across_writes() {
    use approval_tests::events::{invalidation_event, stream, verdict_event};
    let events = vec![
        verdict_event(1, "req-1", 1),
        invalidation_event(2, "agent-7"),
        verdict_event(3, "req-2", 2),
        verdict_event(3, "req-2", 1), // duplicate seq: ignored
    ];
    let bytes = stream(&events);
    for chunk in [1, 2, 3, 7, bytes.len()] {
        let mut p = Plugin::embedded(ManualClock::new()).await.unwrap();
        let c = p.calls().unwrap();
        let api = p.api;
        let (outs, applied) = p
            .store
            .run_concurrent(async |acc| {
                let waits = futures::future::join(
                    c.wait(acc, 1, "req-1", 30 * SEC_NS),
                    c.wait(acc, 2, "req-2", 30 * SEC_NS),
                );
                let feed = async {
                    c.until_waiters(acc, 2).await;
                    c.ingest_stream(&api, acc, &bytes, chunk).await
                };
                futures::join!(waits, feed)
            })
            .await
            .unwrap();
        assert_eq!(
            outs.0,
            Ok(Outcome::Decided(Decision::Approved)),
            "chunk {chunk}"
        );
        assert_eq!(
            outs.1,
            Ok(Outcome::Decided(Decision::Denied)),
            "chunk {chunk}"
        );
        assert_eq!(applied, Ok(3), "chunk {chunk}");
        assert_eq!(p.store.data().invalidations, vec!["agent-7".to_string()]);
    }
}

/// One timer serves every async wait (#15): it runs in one wait's task and
/// is handed to another when that wait ends. Three waits end one after the
/// other (a verdict, then two timeouts), so the timer outlives the waits it
/// ran in and still fires for the last one, on time.
#[tokio::test]
async fn async_timer_is_handed_over_when_the_wait_running_it_ends() {
    let clock = ManualClock::new();
    let mut p = Plugin::embedded(clock.clone()).await.unwrap();
    let c = p.calls().unwrap();
    let (first, short, long) = p
        .store
        .run_concurrent(async |acc| {
            let first = c.wait(acc, 1, "first", 60 * SEC_NS);
            let short = c.wait(acc, 2, "short", 5 * SEC_NS);
            let long = c.wait(acc, 3, "long", 20 * SEC_NS);
            let driver = async {
                c.until_waiters(acc, 3).await;
                c.resolve(acc, "first", Decision::Approved).await.unwrap();
                c.until_waiters(acc, 2).await;
                clock.advance(Duration::from_secs(4));
                for _ in 0..100 {
                    tokio::task::yield_now().await;
                }
                assert_eq!(c.stats(acc).await.waiters, 2, "nothing due at 4 s");
                clock.advance(Duration::from_secs(1));
                c.until_waiters(acc, 1).await;
                clock.advance(Duration::from_secs(15));
                c.until_waiters(acc, 0).await;
            };
            let (first, short, long, ()) = futures::join!(first, short, long, driver);
            (first, short, long)
        })
        .await
        .unwrap();
    assert_eq!(first, Ok(Outcome::Decided(Decision::Approved)));
    assert_eq!(short, Ok(Outcome::TimedOut));
    assert_eq!(long, Ok(Outcome::TimedOut));
}
