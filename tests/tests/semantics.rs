//! What only the Rust host shows of S1-S20 (SPEC.md): dropping, aborting
//! and `select!`-cancelling futures (S7), the direct API's refusals, many
//! listeners, `Send + Sync` and runtime flavours (S14), on a `ManualClock`.
//! The rules every host shares are the scenarios of `tests/scenarios/`,
//! replayed by `scenarios.rs`.

use approval_host::{ApprovalSink, Decision, Outcome, SinkError, Verdict};
use approval_tests::events::{frame, invalidation_event, verdict_event};
use approval_tests::sinks::manual_sink;
use approval_tests::time::{SEC, settle};
use futures::FutureExt;

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
    assert_eq!(w.await, Ok(Outcome::Decided(Verdict::Approved)));
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
async fn a_refused_wait_falls_back_to_pending() {
    let (sink, _) = manual_sink();
    assert_eq!(
        sink.wait_for_approval("", SEC).await,
        Decision::Pending,
        "errors fall back to Pending"
    );
    assert_eq!(
        sink.wait_for_approval("x".repeat(257), SEC).await,
        Decision::Pending
    );
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
    assert_eq!(a.await, Ok(Outcome::Decided(Verdict::Approved)));
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
/// removal by ticket must not scan the id's other waiters (it did: O(k²),
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
    assert_eq!(s.resets, 0);
    assert_eq!((s.waiters, s.ids, s.timed_out), (1, 1, 100_000));
    assert_eq!(sink.deliver("shared", Decision::Approved), Ok(1));
    assert_eq!(newer.await, Ok(Outcome::Decided(Verdict::Approved)));
}
