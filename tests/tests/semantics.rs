//! S1–S11, S13 and S14 through the real `approval-registry` component and
//! the host adapter, on a `ManualClock`: no sleeps, no wall-clock asserts.

use approval_host::{ApprovalSink, Decision, Outcome, SinkConfig, SinkError};
use approval_tests::events::{frame, invalidation_event, stream, verdict_event, wire};
use approval_tests::sinks::{manual_sink, manual_sink_with};
use approval_tests::time::{SEC, settle};
use futures::FutureExt;
use std::time::Duration;

#[tokio::test]
async fn s1_waiter_exists_before_first_poll() {
    let (sink, _) = manual_sink();
    let fut = sink.wait_for_approval("req-1", 30 * SEC);
    assert_eq!(sink.waiter_count(), 1, "registered synchronously");
    assert_eq!(sink.deliver("req-1", Decision::Approved), Ok(1));
    assert_eq!(sink.waiter_count(), 0);
    assert_eq!(fut.await, Decision::Approved);
}

#[tokio::test]
async fn s2_verdict_resolves_waiters_and_removes_them() {
    let (sink, _) = manual_sink();
    let a = sink.wait("req-1", 30 * SEC);
    let b = sink.wait("req-2", 30 * SEC);
    sink.on_approval_resolved_denied("req-1");
    assert_eq!(a.await, Ok(Outcome::Decided(Decision::Denied)));
    assert_eq!(sink.waiter_count(), 1);
    let s = sink.stats().await;
    assert_eq!((s.waiters, s.ids, s.delivered), (1, 1, 1));
    drop(b);
}

trait DenyExt {
    fn on_approval_resolved_denied(&self, id: &str);
}
impl DenyExt for ApprovalSink {
    fn on_approval_resolved_denied(&self, id: &str) {
        approval_host::InvalidationSink::on_approval_resolved(self, id, Decision::Denied);
    }
}

#[tokio::test]
async fn s3_timeout_is_pending_never_denied() {
    let (sink, clock) = manual_sink();
    let fut = sink.wait_for_approval("req-1", 5 * SEC);
    let timed = sink.wait("req-2", 5 * SEC);
    clock.advance(5 * SEC - Duration::from_nanos(1));
    settle().await;
    assert_eq!(sink.waiter_count(), 2, "not due yet");
    clock.advance(Duration::from_nanos(1));
    assert_eq!(fut.await, Decision::Pending);
    assert_eq!(timed.await, Ok(Outcome::TimedOut));
    assert_eq!(sink.stats().await.timed_out, 2);
}

/// S4 as changed by S15 (issue #12; this test used to assert consume-once):
/// an early verdict is remembered and settles every later wait on the id.
#[tokio::test]
async fn s4_early_verdict_is_remembered_and_settles_every_later_wait() {
    let (sink, _clock) = manual_sink();
    assert_eq!(
        sink.deliver("req-1", Decision::Approved),
        Ok(0),
        "nobody waits yet"
    );
    assert_eq!(sink.stats().await.cached_verdicts, 1);
    for _ in 0..2 {
        assert_eq!(
            sink.wait("req-1", 30 * SEC).await,
            Ok(Outcome::Decided(Decision::Approved))
        );
    }
    let s = sink.stats().await;
    assert_eq!((s.early_hits, s.cached_verdicts), (2, 1));
}

#[tokio::test]
async fn s15_a_verdict_is_final_and_the_opposite_is_a_counted_conflict() {
    let (sink, _clock) = manual_sink();
    let w = sink.wait("req-1", 30 * SEC);
    assert_eq!(sink.deliver("req-1", Decision::Denied), Ok(1));
    assert_eq!(w.await, Ok(Outcome::Decided(Decision::Denied)));
    // A late (or injected) approval is ignored, typed on the direct API ...
    assert_eq!(
        sink.deliver("req-1", Decision::Approved),
        Err(SinkError::ConflictingVerdict)
    );
    // ... and through a frame, which never moves `last_seq`.
    let frame = stream(&[verdict_event(1, "req-1", wire(Decision::Approved))]);
    let r = sink.ingest_bytes(&frame).unwrap();
    assert_eq!(r.errors, vec![SinkError::ConflictingVerdict]);
    assert_eq!(r.last_seq, 0);
    assert_eq!(sink.deliver("req-1", Decision::Denied), Ok(0), "a repeat");
    // The agent's retry settles with the first verdict.
    assert_eq!(
        sink.wait("req-1", 30 * SEC).await,
        Ok(Outcome::Decided(Decision::Denied))
    );
    let s = sink.stats().await;
    assert_eq!((s.conflicts, s.malformed, s.delivered), (2, 0, 1));
}

#[tokio::test]
async fn s4_early_verdict_expires_after_ttl_and_capacity_evicts_oldest() {
    let config = SinkConfig {
        verdict_cache_capacity: 2,
        verdict_cache_ttl: 10 * SEC,
        ..SinkConfig::default()
    };
    let (sink, clock) = manual_sink_with(config);
    sink.deliver("a", Decision::Approved).unwrap();
    sink.deliver("b", Decision::Denied).unwrap();
    sink.deliver("c", Decision::Denied).unwrap();
    assert_eq!(sink.stats().await.evictions, 1);
    assert_eq!(
        sink.wait("c", SEC).await,
        Ok(Outcome::Decided(Decision::Denied))
    );
    let evicted = sink.wait("a", SEC);
    clock.advance(11 * SEC);
    assert_eq!(evicted.await, Ok(Outcome::TimedOut), "oldest was evicted");
    let stale = sink.wait("b", SEC);
    clock.advance(SEC);
    assert_eq!(stale.await, Ok(Outcome::TimedOut), "past its TTL");
}

#[tokio::test]
async fn s5_every_waiter_on_an_id_gets_the_verdict() {
    let (sink, _) = manual_sink();
    let waits: Vec<_> = (0..100)
        .map(|_| sink.wait_for_approval("req-1", 30 * SEC))
        .collect();
    assert_eq!(sink.deliver("req-1", Decision::Approved), Ok(100));
    for w in waits {
        assert_eq!(w.await, Decision::Approved);
    }
}

#[tokio::test]
async fn s6_id_reuse_does_not_remove_newer_waiter() {
    let (sink, clock) = manual_sink();
    let older = sink.wait("req-1", SEC);
    clock.advance(SEC / 2);
    let newer = sink.wait("req-1", 10 * SEC);
    clock.advance(SEC / 2);
    assert_eq!(older.await, Ok(Outcome::TimedOut));
    assert_eq!(sink.waiter_count(), 1, "the newer waiter survives");
    assert_eq!(sink.deliver("req-1", Decision::Approved), Ok(1));
    assert_eq!(newer.await, Ok(Outcome::Decided(Decision::Approved)));
}

#[tokio::test]
async fn s6_cancel_removes_only_its_own_waiter() {
    let (sink, _) = manual_sink();
    let a = sink.wait("req-1", 10 * SEC);
    let b = sink.wait("req-1", 10 * SEC);
    drop(a);
    assert_eq!(sink.deliver("req-1", Decision::Denied), Ok(1));
    assert_eq!(b.await, Ok(Outcome::Decided(Decision::Denied)));
}

#[tokio::test]
async fn s7_dropped_future_removes_its_waiter() {
    let (sink, _) = manual_sink();
    let fut = sink.wait_for_approval("req-1", 30 * SEC);
    assert_eq!(sink.waiter_count(), 1);
    drop(fut);
    assert_eq!(sink.waiter_count(), 0);
    let s = sink.stats().await;
    assert_eq!((s.waiters, s.cancelled), (0, 1));
}

#[tokio::test]
async fn s7_select_loser_removes_its_waiter() {
    let (sink, _) = manual_sink();
    let fut = sink.wait_for_approval("req-1", 30 * SEC);
    tokio::select! {
        _ = fut => panic!("no verdict was sent"),
        () = std::future::ready(()) => {}
    }
    assert_eq!(sink.waiter_count(), 0);
    assert_eq!(sink.stats().await.waiters, 0);
}

#[tokio::test]
async fn s7_aborted_task_removes_its_waiter() {
    let (sink, _) = manual_sink();
    let task = tokio::spawn(sink.wait_for_approval("req-1", 30 * SEC));
    assert_eq!(sink.waiter_count(), 1);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(sink.waiter_count(), 0);
    assert_eq!(sink.stats().await.waiters, 0);
}

#[tokio::test]
async fn s8_pending_and_unspecified_are_not_verdicts() {
    let (sink, _) = manual_sink();
    let w = sink.wait("req-1", 30 * SEC);
    assert_eq!(
        sink.deliver("req-1", Decision::Pending),
        Err(SinkError::UnknownDecision(3))
    );
    assert_eq!(
        sink.deliver("req-1", Decision::Unspecified),
        Err(SinkError::UnknownDecision(0))
    );
    let unknown = frame(&verdict_event(0, "req-1", 42));
    assert_eq!(
        sink.push_frame(&unknown),
        Err(SinkError::UnknownDecision(42))
    );
    assert_eq!(sink.waiter_count(), 1, "nobody was resolved");
    let s = sink.stats().await;
    assert_eq!((s.malformed, s.cached_verdicts), (3, 0));
    assert_eq!(sink.deliver("req-1", Decision::Approved), Ok(1));
    assert_eq!(w.await, Ok(Outcome::Decided(Decision::Approved)));
}

#[tokio::test]
async fn s8_malformed_frames_are_counted_and_spare_other_waiters() {
    let (sink, _) = manual_sink();
    let w = sink.wait("req-1", 30 * SEC);
    assert!(matches!(
        sink.push_frame(&[0xff, 0xff, 0xff]),
        Err(SinkError::MalformedFrame(_))
    ));
    let mut bytes = stream(&[verdict_event(1, "other", wire(Decision::Approved))]);
    bytes.extend([2, 0xff, 0xff]);
    bytes.extend(stream(&[verdict_event(2, "req-1", wire(Decision::Denied))]));
    let report = sink.ingest_bytes(&bytes).unwrap();
    assert_eq!((report.events, report.rejected), (2, 1));
    assert_eq!(w.await, Ok(Outcome::Decided(Decision::Denied)));
    assert_eq!(sink.stats().await.malformed, 2);
}

#[tokio::test]
async fn s9_sequenced_duplicates_are_ignored_and_counted() {
    let (sink, _) = manual_sink();
    let w = sink.wait("req-1", 30 * SEC);
    sink.ingest_bytes(&stream(&[verdict_event(7, "x", wire(Decision::Approved))]))
        .unwrap();
    let report = sink
        .ingest_bytes(&stream(&[verdict_event(
            7,
            "req-1",
            wire(Decision::Denied),
        )]))
        .unwrap();
    assert_eq!(report.duplicates, 1);
    assert_eq!(sink.waiter_count(), 1);
    sink.ingest_bytes(&stream(&[verdict_event(
        0,
        "req-1",
        wire(Decision::Approved),
    )]))
    .unwrap();
    assert_eq!(
        w.await,
        Ok(Outcome::Decided(Decision::Approved)),
        "seq 0 is never a duplicate"
    );
    let s = sink.stats().await;
    assert_eq!((s.duplicates, s.last_seq), (1, 7));
}

#[tokio::test]
async fn s10_policy_invalidations_reach_every_listener() {
    let (sink, _) = manual_sink();
    let mut a = sink.subscribe_invalidations();
    let mut b = sink.subscribe_invalidations();
    approval_host::InvalidationSink::on_policy_invalidated(&sink, "agent-7");
    sink.push_frame(&frame(&invalidation_event(1, ""))).unwrap();
    for rx in [&mut a, &mut b] {
        assert_eq!(rx.recv().await.unwrap(), "agent-7");
        assert_eq!(rx.recv().await.unwrap(), "", "empty id: all agents");
    }
    assert_eq!(sink.stats().await.invalidations, 2);
}

#[tokio::test]
async fn s11_duration_max_is_capped_not_forever() {
    let config = SinkConfig {
        max_timeout: Duration::from_secs(3600),
        ..SinkConfig::default()
    };
    let (sink, clock) = manual_sink_with(config);
    let fut = sink.wait("req-1", Duration::MAX);
    clock.advance(Duration::from_secs(3599));
    settle().await;
    assert_eq!(sink.waiter_count(), 1);
    clock.advance(SEC);
    assert_eq!(fut.await, Ok(Outcome::TimedOut));
}

#[tokio::test]
async fn s11_deadline_counts_from_registration_not_first_poll() {
    let (sink, clock) = manual_sink();
    let fut = sink.wait("req-1", 2 * SEC);
    clock.advance(2 * SEC);
    settle().await;
    assert_eq!(sink.waiter_count(), 0, "expired before anyone polled");
    assert_eq!(fut.await, Ok(Outcome::TimedOut));
}

#[tokio::test]
async fn s11_zero_timeout_times_out_at_the_next_check() {
    let (sink, _) = manual_sink();
    assert_eq!(
        sink.wait("req-1", Duration::ZERO).await,
        Ok(Outcome::TimedOut)
    );
}

#[tokio::test]
async fn s13_bad_request_ids_get_typed_errors_and_spare_others() {
    let (sink, _) = manual_sink();
    let w = sink.wait("ok", 30 * SEC);
    assert_eq!(sink.wait("", SEC).await, Err(SinkError::RequestIdEmpty));
    assert_eq!(
        sink.wait("x".repeat(257), SEC).await,
        Err(SinkError::RequestIdTooLong(257))
    );
    assert_eq!(
        sink.deliver("", Decision::Approved),
        Err(SinkError::RequestIdEmpty)
    );
    assert_eq!(
        sink.wait_for_approval("", SEC).await,
        Decision::Pending,
        "errors fall back to Pending"
    );
    assert_eq!(sink.waiter_count(), 1);
    sink.deliver("ok", Decision::Approved).unwrap();
    assert_eq!(w.await, Ok(Outcome::Decided(Decision::Approved)));
}

#[tokio::test]
async fn s13_max_waiters_is_a_typed_error() {
    let (sink, _) = manual_sink_with(SinkConfig {
        max_waiters: 2,
        ..SinkConfig::default()
    });
    let a = sink.wait("a", SEC);
    let b = sink.wait("b", SEC);
    assert_eq!(sink.wait("c", SEC).await, Err(SinkError::TooManyWaiters(2)));
    assert_eq!(sink.waiter_count(), 2);
    drop((a, b));
}

#[test]
fn s14_sink_is_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<ApprovalSink>();
}

#[tokio::test]
async fn s14_sinks_are_independent() {
    let (one, _) = manual_sink();
    let (two, _) = manual_sink();
    let a = one.wait("req-1", 30 * SEC);
    let b = two.wait("req-1", 30 * SEC);
    assert_eq!(one.deliver("req-1", Decision::Approved), Ok(1));
    assert_eq!(a.await, Ok(Outcome::Decided(Decision::Approved)));
    assert_eq!(two.waiter_count(), 1);
    assert!(b.now_or_never().is_none());
    assert_eq!(two.waiter_count(), 0, "dropped after one poll");
}

#[test]
fn s14_works_on_every_runtime_flavour_and_without_one() {
    for multi in [false, true] {
        let rt = if multi {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .unwrap();
        rt.block_on(async {
            let (sink, clock) = manual_sink();
            let clone = sink.clone();
            let task = tokio::spawn(clone.wait_for_approval("req-1", SEC));
            clock.advance(SEC);
            assert_eq!(task.await.unwrap(), Decision::Pending);
        });
    }
    // A plain thread, no runtime: the sink starts its own timer thread.
    let (sink, clock) = manual_sink();
    let handle = std::thread::spawn(move || {
        let fut = sink.wait_for_approval("req-1", SEC);
        clock.advance(SEC);
        futures::executor::block_on(fut)
    });
    assert_eq!(handle.join().unwrap(), Decision::Pending);
}

#[tokio::test]
async fn waiter_count_agrees_with_guest_stats_when_idle() {
    let (sink, clock) = manual_sink();
    let waits: Vec<_> = (0..10)
        .map(|i| sink.wait(format!("req-{i}"), SEC * (i + 1)))
        .collect();
    sink.deliver("req-0", Decision::Approved).unwrap();
    clock.advance(3 * SEC);
    settle().await;
    assert_eq!(sink.waiter_count(), sink.stats().await.waiters as usize);
    assert_eq!(sink.waiter_count(), 7);
    drop(waits);
    assert_eq!(sink.waiter_count(), 0);
    assert_eq!(sink.stats().await.waiters, 0);
}

/// S6 at scale: 100,000 waiters on one id time out in one `expire` call. Each
/// removal by token must not scan the id's other waiters (it did: O(k²),
/// enough to run into the per-call time budget and reset the instance).
#[tokio::test]
async fn s6_many_waiters_on_one_id_time_out_in_one_call_without_a_reset() {
    let (sink, clock) = manual_sink();
    let waits: Vec<_> = (0..100_000).map(|_| sink.wait("shared", 5 * SEC)).collect();
    let newer = sink.wait("shared", 60 * SEC);
    clock.advance(5 * SEC);
    for w in waits {
        assert_eq!(w.await, Ok(Outcome::TimedOut));
    }
    let s = sink.stats().await;
    assert_eq!((s.traps, s.resets), (0, 0));
    assert_eq!((s.waiters, s.ids, s.timed_out), (1, 1, 100_000));
    assert_eq!(sink.deliver("shared", Decision::Approved), Ok(1));
    assert_eq!(newer.await, Ok(Outcome::Decided(Decision::Approved)));
}
