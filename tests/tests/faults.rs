//! S12: a trapping guest. The `fault-injection` feature makes the next guest
//! call trap (its epoch budget is set to zero, the same trap a runaway call
//! gets); the sink must drop the poisoned store, instantiate afresh, resolve
//! every outstanding wait as `Reset` (Pending, never Denied), count it, and
//! serve new waits normally, without touching other sinks.

use approval_host::{Decision, Outcome, SinkError, Verdict, WaitError};
use approval_tests::events::{decided, stream, verdict_event, wire};
use approval_tests::sinks::manual_sink;
use approval_tests::time::HOUR;
use std::time::Duration;

#[tokio::test]
async fn trap_with_1000_waits_outstanding_resets_them_all_to_pending() {
    let (sink, _clock) = manual_sink();
    let (other, _) = manual_sink();
    let bystander = other.wait("req-x", HOUR);
    let waits: Vec<_> = (0..1000)
        .map(|i| sink.wait_for_approval(format!("req-{i}"), HOUR))
        .collect();
    let typed = sink.wait("req-typed", HOUR);
    assert_eq!(sink.waiter_count(), 1001);

    sink.inject_trap();
    let err = sink.deliver("req-0", Decision::Denied).unwrap_err();
    assert!(matches!(err, SinkError::GuestFault(_)), "{err:?}");

    for w in waits {
        assert_eq!(w.await, Decision::Pending, "reset is never a denial");
    }
    assert_eq!(typed.await, Ok(Outcome::Reset));
    assert_eq!(sink.waiter_count(), 0);
    let s = sink.stats().await;
    assert_eq!((s.resets, s.waiters), (1, 0));

    let next = sink.wait("req-after", HOUR);
    assert_eq!(sink.deliver("req-after", Decision::Approved), Ok(1));
    assert_eq!(next.await, Ok(Outcome::Decided(Verdict::Approved)));

    assert_eq!(other.waiter_count(), 1, "another sink is untouched");
    assert_eq!(other.deliver("req-x", Decision::Approved), Ok(1));
    assert_eq!(bystander.await, Ok(Outcome::Decided(Verdict::Approved)));
}

/// A registration is queued and reaches the guest in a flush (SPEC.md
/// §5.5): a trap there resolves the queued wait as `Reset` (#15), as
/// a trap resolves every outstanding wait, and the next wait works.
#[tokio::test]
async fn trap_during_registration_fails_that_wait_only() {
    let (sink, _clock) = manual_sink();
    sink.inject_trap();
    assert_eq!(sink.wait("req-1", HOUR).await, Ok(Outcome::Reset));
    assert_eq!(sink.stats().await.resets, 1);
    assert_eq!(
        sink.wait_for_approval("req-1", Duration::ZERO).await,
        Decision::Pending
    );
    let w = sink.wait("req-2", HOUR);
    sink.deliver("req-2", Decision::Denied).unwrap();
    assert_eq!(w.await, Ok(Outcome::Decided(Verdict::Denied)));
    assert_eq!(sink.stats().await.resets, 1);
}

#[tokio::test]
async fn reset_carries_the_stream_resume_point_over() {
    let (sink, _clock) = manual_sink();
    let events: Vec<_> = (1..=5u64)
        .map(|s| verdict_event(s, &format!("req-{s}"), wire(Decision::Approved)))
        .collect();
    sink.ingest_bytes(&stream(&events)).unwrap();
    sink.inject_trap();
    assert!(sink.end_stream() == 0);
    let s = sink.stats().await;
    assert_eq!(
        (s.resets, s.last_seq),
        (1, 5),
        "the fresh instance resumes after seq 5"
    );
    // A source that reopens replays from last_seq; an older event stays a duplicate.
    let report = sink.ingest_bytes(&stream(&events[2..])).unwrap();
    assert_eq!((report.events, report.duplicates), (0, 3));
}

#[tokio::test]
async fn memory_cap_is_a_reset_not_a_host_crash() {
    use approval_host::SinkConfig;
    use approval_tests::sinks::manual_sink_with;
    let config = SinkConfig {
        max_memory_bytes: 4 << 20,
        ..SinkConfig::default()
    };
    let (sink, _clock) = manual_sink_with(config);
    let mut waits = Vec::new();
    let mut fault = None;
    for i in 0..200_000 {
        let mut w = sink.wait(format!("req-{i:0>200}"), HOUR);
        // Polling flushes the queued registrations: the flush that breaks
        // the cap faults, and every outstanding wait ends as `Reset`.
        match futures::poll!(&mut w) {
            std::task::Poll::Ready(ended) => {
                fault = Some((i, ended));
                break;
            }
            std::task::Poll::Pending => waits.push(w),
        }
    }
    let (at, ended) = fault.expect("4 MiB cannot hold 200,000 waiters with 200-byte ids");
    assert_eq!(ended, Ok(Outcome::Reset), "at {at}");
    assert!(
        at > 1_000,
        "the cap is reached by a burst, not at once: {at}"
    );
    for w in waits {
        assert_eq!(w.await, Ok(Outcome::Reset));
    }
    let s = sink.stats().await;
    assert_eq!((s.resets, s.waiters), (1, 0));
    let w = sink.wait("after", HOUR);
    sink.deliver("after", Decision::Approved).unwrap();
    assert_eq!(w.await, Ok(Outcome::Decided(Verdict::Approved)));
}

#[tokio::test]
async fn crash_loop_is_refused_with_a_clear_error_then_recovers() {
    use approval_host::SinkConfig;
    use approval_tests::sinks::manual_sink_with;
    let config = SinkConfig {
        crash_loop_resets: 3,
        crash_loop_backoff: Duration::from_millis(50),
        ..SinkConfig::default()
    };
    let (sink, _clock) = manual_sink_with(config);
    let events: Vec<_> = (1..=3)
        .map(|seq| verdict_event(seq, "early", wire(Decision::Approved)))
        .collect();
    sink.ingest_bytes(&stream(&events)).unwrap();
    for _ in 0..4 {
        sink.inject_trap();
        assert!(matches!(
            sink.deliver("x", Decision::Approved),
            Err(SinkError::GuestFault(_))
        ));
    }
    // The fourth reset within the window is a crash loop: calls are refused.
    assert!(matches!(
        sink.wait("req-1", HOUR).await,
        Err(WaitError::CrashLoop(_))
    ));
    assert_eq!(
        sink.wait_for_approval("req-1", HOUR).await,
        Decision::Pending
    );
    assert!(matches!(
        sink.deliver("req-1", Decision::Approved),
        Err(SinkError::CrashLoop(_))
    ));
    assert_eq!(sink.stats().await.resets, 4);
    // The resume point reads true while quarantined (a pump would otherwise
    // ask the gateway for its whole log).
    assert_eq!(sink.stats().await.last_seq, 3);
    assert_eq!(sink.resume_point().last_seq, 3);
    // After the backoff (a real pause: the guard runs on wall time) the sink
    // serves again.
    std::thread::sleep(Duration::from_millis(60));
    let w = sink.wait("req-2", HOUR);
    assert_eq!(sink.deliver("req-2", Decision::Approved), Ok(1));
    assert_eq!(w.await, Ok(Outcome::Decided(Verdict::Approved)));
}

/// S18: a reset loses no applied verdict. Verdicts the old instance
/// remembered (early, delivered, or from the stream) are remembered by the
/// fresh one: a wait settles with them, and the opposite stays a conflict.
#[tokio::test]
async fn a_reset_loses_no_applied_verdict() {
    let (sink, _clock) = manual_sink();
    sink.deliver("early", Decision::Approved).unwrap();
    let w = sink.wait("delivered", HOUR);
    sink.deliver("delivered", Decision::Denied).unwrap();
    assert_eq!(w.await, Ok(Outcome::Decided(Verdict::Denied)));
    let framed = stream(&[verdict_event(1, "streamed", wire(Decision::Approved))]);
    sink.ingest_bytes(&framed).unwrap();

    sink.inject_trap();
    assert!(matches!(
        sink.deliver("x", Decision::Approved),
        Err(SinkError::GuestFault(_))
    ));
    assert_eq!(sink.stats().await.resets, 1);

    for (id, decision) in [
        ("early", Decision::Approved),
        ("delivered", Decision::Denied),
        ("streamed", Decision::Approved),
    ] {
        assert_eq!(
            sink.wait(id, HOUR).await,
            Ok(decided(decision)),
            "{id} is still remembered"
        );
    }
    assert_eq!(
        sink.deliver("delivered", Decision::Approved),
        Err(SinkError::ConflictingVerdict),
        "a late approval after the reset does not flip the denial"
    );
    let s = sink.stats().await;
    assert_eq!((s.cached_verdicts, s.last_seq), (3, 1));
}
