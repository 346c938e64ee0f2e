//! The host's queue of waits and cancels (SPEC.md §5.5, #15): `wait`
//! and a dropped wait's cancel are queued and reach the guest as one flat
//! buffer before any other guest call. These cases pin what the queue must
//! never change: S1 (an event sees every wait asked for before it), exact
//! `waiter_count`, typed errors on the right `Wait`, timeouts counted from
//! when the wait was asked for, and S12 (a trap resolves queued waits as
//! `Reset`).

use approval_host::{Decision, Outcome, SinkConfig, SinkError, Verdict, WaitError};
use approval_tests::events::{stream, verdict_event, wire};
use approval_tests::sinks::{manual_sink, manual_sink_with};
use approval_tests::time::HOUR;
use std::task::Poll;
use std::time::Duration;

#[tokio::test]
async fn a_wait_queued_then_dropped_before_any_flush_is_cancelled() {
    let (sink, _clock) = manual_sink();
    let w = sink.wait("req-1", HOUR);
    drop(w);
    assert_eq!(sink.waiter_count(), 0);
    let s = sink.stats().await;
    assert_eq!(
        (s.waiters, s.cancelled),
        (0, 1),
        "registered, then cancelled"
    );
    assert_eq!(
        sink.deliver("req-1", Decision::Approved),
        Ok(0),
        "nobody left to wake"
    );
}

#[tokio::test]
async fn a_queued_wait_with_a_bad_id_fails_alone() {
    let config = SinkConfig {
        max_request_id_bytes: 16,
        ..SinkConfig::default()
    };
    let (sink, _clock) = manual_sink_with(config);
    let before = sink.wait("req-1", HOUR);
    let empty = sink.wait("", HOUR);
    let too_long = sink.wait("x".repeat(17), HOUR);
    let after = sink.wait("req-2", HOUR);
    // One flush carries all four and the verdict.
    assert_eq!(sink.deliver("req-1", Decision::Approved), Ok(1));
    assert_eq!(before.await, Ok(Outcome::Decided(Verdict::Approved)));
    assert_eq!(empty.await, Err(WaitError::RequestIdEmpty));
    assert_eq!(too_long.await, Err(WaitError::RequestIdTooLong(17)));
    assert_eq!(sink.waiter_count(), 1, "req-2 still waits");
    assert_eq!(sink.deliver("req-2", Decision::Denied), Ok(1));
    assert_eq!(after.await, Ok(Outcome::Decided(Verdict::Denied)));

    // An id over the limit is refused before it is queued or copied into
    // the guest, with the guest's own typed error, however large.
    let huge = "x".repeat(16 << 20);
    assert_eq!(
        sink.wait(&huge, HOUR).await,
        Err(WaitError::RequestIdTooLong(16 << 20))
    );
    assert_eq!(
        sink.deliver(&huge, Decision::Approved),
        Err(SinkError::RequestIdTooLong(16 << 20))
    );
    let s = sink.stats().await;
    assert_eq!((s.resets, s.waiters), (0, 0));
}

#[tokio::test]
async fn too_many_queued_waits_fail_with_the_guests_typed_error() {
    let config = SinkConfig {
        max_waiters: 2,
        ..SinkConfig::default()
    };
    let (sink, _clock) = manual_sink_with(config);
    let waits: Vec<_> = (0..3).map(|i| sink.wait(format!("r-{i}"), HOUR)).collect();
    assert_eq!(sink.waiter_count(), 2, "the third is refused at the flush");
    let mut waits = waits.into_iter();
    let (a, b, c) = (waits.next(), waits.next(), waits.next());
    assert_eq!(c.unwrap().await, Err(WaitError::TooManyWaiters(2)));
    drop((a, b));
    assert_eq!(sink.waiter_count(), 0);
}

#[tokio::test]
async fn a_verdict_through_ingest_sees_the_waits_queued_before_it() {
    let (sink, _clock) = manual_sink();
    let w = sink.wait("req-1", HOUR);
    let report = sink
        .ingest_bytes(&stream(&[verdict_event(
            1,
            "req-1",
            wire(Decision::Denied),
        )]))
        .unwrap();
    assert_eq!(
        (report.events, report.completed),
        (1, 1),
        "it found the waiter"
    );
    assert_eq!(sink.stats().await.early_hits, 0, "not cached first");
    assert_eq!(w.await, Ok(Outcome::Decided(Verdict::Denied)));

    // The same through a single frame.
    let w = sink.wait("req-2", HOUR);
    sink.push_frame(&approval_tests::events::frame(&verdict_event(
        2,
        "req-2",
        wire(Decision::Approved),
    )))
    .unwrap();
    assert_eq!(
        futures::poll!(w),
        Poll::Ready(Ok(Outcome::Decided(Verdict::Approved)))
    );
}

#[tokio::test]
async fn waiter_count_is_exact_while_waits_are_queued() {
    let (sink, _clock) = manual_sink();
    assert_eq!(sink.deliver("early", Decision::Approved), Ok(0));
    let settled = sink.wait("early", HOUR);
    let pending = sink.wait("other", HOUR);
    let dropped = sink.wait("gone", HOUR);
    drop(dropped);
    // The early verdict settles the first at the flush this count makes.
    assert_eq!(sink.waiter_count(), 1);
    assert_eq!(sink.stats().await.waiters, 1);
    assert_eq!(settled.await, Ok(Outcome::Decided(Verdict::Approved)));
    drop(pending);
    assert_eq!(sink.waiter_count(), 0);
}

#[tokio::test]
async fn a_queued_wait_keeps_the_deadline_it_was_asked_for() {
    let (sink, clock) = manual_sink();
    let mut w = sink.wait("slow", Duration::from_secs(10));
    clock.advance(Duration::from_secs(6));
    // Flushed 6 s after it was asked for: the deadline stays at 10 s.
    assert_eq!(futures::poll!(&mut w), Poll::Pending);
    clock.advance(Duration::from_secs(4));
    let ended = tokio::time::timeout(Duration::from_secs(10), w).await;
    assert_eq!(ended.expect("timed out at 10 s"), Ok(Outcome::TimedOut));
}

#[tokio::test]
async fn the_timer_times_out_a_wait_nobody_flushed() {
    let (sink, clock) = manual_sink();
    let mut w = sink.wait("never-polled", Duration::from_secs(10));
    clock.advance(Duration::from_secs(10));
    // Only the timer task runs during this sleep: it must have armed itself
    // for the queued deadline, then flushed and expired. Nothing here calls
    // the guest, so the first poll finds the outcome (a timer that learned
    // the deadline only from a flush would still be idle, and the poll
    // would be the flush that arms it).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(futures::poll!(&mut w), Poll::Ready(Ok(Outcome::TimedOut)));
    assert_eq!(sink.stats().await.timed_out, 1);
}

#[tokio::test]
async fn a_trap_during_a_flush_resolves_every_queued_wait_as_reset() {
    let (sink, _clock) = manual_sink();
    let mut held = sink.wait("held", HOUR);
    assert_eq!(futures::poll!(&mut held), Poll::Pending, "in the guest");
    let queued: Vec<_> = (0..100)
        .map(|i| sink.wait(format!("q-{i}"), HOUR))
        .collect();
    sink.inject_trap();
    assert_eq!(sink.waiter_count(), 0, "the flush trapped: all reset");
    for w in queued {
        assert_eq!(w.await, Ok(Outcome::Reset));
    }
    assert_eq!(held.await, Ok(Outcome::Reset));
    let s = sink.stats().await;
    assert_eq!((s.resets, s.waiters), (1, 0));
    let w = sink.wait("after", HOUR);
    assert_eq!(sink.deliver("after", Decision::Approved), Ok(1));
    assert_eq!(w.await, Ok(Outcome::Decided(Verdict::Approved)));
}

/// A polled `Wait` whose registration is still queued does not flush
/// inline; it asks the timer task to, which settles what the guest settles
/// at once (an early verdict, a refused id) without any other call.
#[tokio::test]
async fn a_polled_queued_wait_is_settled_by_the_timer_tasks_flush() {
    let (sink, _clock) = manual_sink();
    assert_eq!(sink.deliver("early", Decision::Denied), Ok(0));
    let mut early = sink.wait("early", HOUR);
    let mut empty = sink.wait("", HOUR);
    assert_eq!(futures::poll!(&mut early), Poll::Pending, "still queued");
    let within = Duration::from_secs(10);
    assert_eq!(
        tokio::time::timeout(within, early).await,
        Ok(Ok(Outcome::Decided(Verdict::Denied)))
    );
    assert_eq!(
        tokio::time::timeout(within, &mut empty).await,
        Ok(Err(WaitError::RequestIdEmpty))
    );
}
