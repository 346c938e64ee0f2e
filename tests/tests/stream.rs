//! The event stream through the real component: frames split anywhere,
//! thousands per write, duplicates and replays, garbage between good frames,
//! a corrupt stream, and an `AsyncRead` source through the pump.

use approval_host::sources::ReaderSource;
use approval_host::{Decision, Outcome, SinkError, Verdict};
use approval_tests::events::{decided, frame, invalidation_event, stream, verdict_event, wire};
use approval_tests::sinks::manual_sink;
use approval_tests::time::HOUR;

#[tokio::test]
async fn frames_split_at_every_byte_boundary_resolve_the_same() {
    let events = [
        verdict_event(1, "req-a", wire(Decision::Approved)),
        invalidation_event(2, "agent-7"),
        verdict_event(3, &"b".repeat(200), wire(Decision::Denied)),
    ];
    let bytes = stream(&events);
    for cut in 0..=bytes.len() {
        let (sink, _) = manual_sink();
        let a = sink.wait("req-a", HOUR);
        let b = sink.wait("b".repeat(200), HOUR);
        let first = sink.ingest_bytes(&bytes[..cut]).unwrap();
        let second = sink.ingest_bytes(&bytes[cut..]).unwrap();
        assert_eq!(first.events + second.events, 3, "cut at {cut}");
        assert_eq!(
            a.await,
            Ok(Outcome::Decided(Verdict::Approved)),
            "cut at {cut}"
        );
        assert_eq!(
            b.await,
            Ok(Outcome::Decided(Verdict::Denied)),
            "cut at {cut}"
        );
        assert_eq!(sink.stats().await.last_seq, 3);
    }
}

#[tokio::test]
async fn ten_thousand_frames_in_one_write_resolve_ten_thousand_waiters() {
    let (sink, _) = manual_sink();
    let waits: Vec<_> = (0..10_000)
        .map(|i| sink.wait(format!("req-{i}"), HOUR))
        .collect();
    let events: Vec<_> = (0..10_000u64)
        .map(|i| {
            verdict_event(
                i + 1,
                &format!("req-{i}"),
                wire(if i.is_multiple_of(2) {
                    Decision::Approved
                } else {
                    Decision::Denied
                }),
            )
        })
        .collect();
    let report = sink.ingest_bytes(&stream(&events)).unwrap();
    assert_eq!((report.events, report.rejected), (10_000, 0));
    assert_eq!(sink.waiter_count(), 0);
    for (i, w) in waits.into_iter().enumerate() {
        let want = if i.is_multiple_of(2) {
            Decision::Approved
        } else {
            Decision::Denied
        };
        assert_eq!(w.await, Ok(decided(want)));
    }
    assert_eq!(sink.stats().await.last_seq, 10_000);
}

#[tokio::test]
async fn a_replayed_stream_is_applied_once() {
    let (sink, _) = manual_sink();
    let events: Vec<_> = (1..=100u64)
        .map(|s| verdict_event(s, &format!("req-{s}"), wire(Decision::Approved)))
        .collect();
    sink.ingest_bytes(&stream(&events[..60])).unwrap();
    // The gateway replays from an older seq after a reconnect.
    let report = sink.ingest_bytes(&stream(&events[40..])).unwrap();
    assert_eq!((report.events, report.duplicates), (40, 20));
    let s = sink.stats().await;
    assert_eq!(
        (s.cached_verdicts, s.duplicates, s.last_seq),
        (100, 20, 100)
    );
}

#[tokio::test]
async fn corrupt_length_prefix_ends_the_stream_but_not_the_sink() {
    let (sink, _) = manual_sink();
    let a = sink.wait("req-a", HOUR);
    let b = sink.wait("req-b", HOUR);
    let mut bytes = stream(&[verdict_event(1, "req-a", wire(Decision::Approved))]);
    bytes.extend([0xff; 12]); // a varint that never ends
    bytes.extend(stream(&[verdict_event(
        2,
        "req-b",
        wire(Decision::Approved),
    )]));
    let report = sink.ingest_bytes(&bytes).unwrap();
    assert_eq!(report.events, 1, "frames before the corruption apply");
    assert!(
        matches!(report.fatal, Some(SinkError::MalformedFrame(_))),
        "a never-ending varint loses framing"
    );
    assert_eq!(a.await, Ok(Outcome::Decided(Verdict::Approved)));
    // The source reopens (resuming from last_seq = 1) and sends the rest.
    assert_eq!(sink.stats().await.last_seq, 1);
    sink.ingest_bytes(&stream(&[verdict_event(
        2,
        "req-b",
        wire(Decision::Denied),
    )]))
    .unwrap();
    assert_eq!(b.await, Ok(Outcome::Decided(Verdict::Denied)));
}

#[tokio::test]
async fn oversized_frame_is_a_typed_error() {
    let (sink, _) = manual_sink();
    let big = verdict_event(1, "req", wire(Decision::Approved));
    let mut bytes = Vec::new();
    prost::encoding::encode_varint(1 << 20, &mut bytes);
    bytes.extend(vec![0u8; 64]);
    let report = sink.ingest_bytes(&bytes).unwrap();
    assert_eq!(report.fatal, Some(SinkError::FrameTooLarge(1 << 20)));
    assert_eq!(
        sink.push_frame(&vec![0u8; 70_000]),
        Err(SinkError::FrameTooLarge(70_000))
    );
    sink.push_frame(&frame(&big)).unwrap();
}

#[tokio::test]
async fn end_stream_drops_a_partial_frame_left_by_a_closed_source() {
    let (sink, _) = manual_sink();
    let w = sink.wait("req-1", HOUR);
    let bytes = stream(&[verdict_event(1, "req-1", wire(Decision::Approved))]);
    sink.ingest_bytes(&bytes[..bytes.len() - 2]).unwrap();
    assert_eq!(sink.end_stream(), bytes.len() as u32 - 2);
    assert_eq!(sink.stats().await.malformed, 1);
    // The next connection starts clean.
    sink.ingest_bytes(&bytes).unwrap();
    assert_eq!(w.await, Ok(Outcome::Decided(Verdict::Approved)));
}

#[tokio::test]
async fn reader_source_feeds_frames_split_across_reads() {
    let (sink, _) = manual_sink();
    let waits: Vec<_> = (0..500)
        .map(|i| sink.wait(format!("req-{i}"), HOUR))
        .collect();
    let events: Vec<_> = (0..500u64)
        .map(|i| verdict_event(i + 1, &format!("req-{i}"), wire(Decision::Denied)))
        .collect();
    let bytes = stream(&events);
    // A pipe whose writer sends odd-sized writes, so frames straddle reads.
    let (mut writer, reader) = tokio::io::duplex(97);
    let pump = sink.pump(ReaderSource::new(reader, "duplex"));
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for chunk in bytes.chunks(13) {
            writer.write_all(chunk).await.unwrap();
        }
    });
    for w in waits {
        assert_eq!(w.await, Ok(Outcome::Decided(Verdict::Denied)));
    }
    pump.finished().await;
    let s = sink.stats().await;
    assert_eq!((s.delivered, s.last_seq, s.malformed), (500, 500, 0));
}

#[tokio::test]
async fn direct_events_do_not_disturb_a_partial_stream_frame() {
    use approval_host::InvalidationSink;
    let (sink, _) = manual_sink();
    let a = sink.wait("req-a", HOUR);
    let b = sink.wait("req-b", HOUR);
    let bytes = stream(&[verdict_event(1, "req-a", wire(Decision::Approved))]);
    sink.ingest_bytes(&bytes[..5]).unwrap();
    // Direct calls in between (a frame, a policy change, a non-verdict).
    let direct = frame(&verdict_event(0, "req-b", wire(Decision::Denied)));
    sink.push_frame(&direct).unwrap();
    sink.on_policy_invalidated("agent-7");
    assert!(sink.deliver("req-a", Decision::Pending).is_err());
    let rest = sink.ingest_bytes(&bytes[5..]).unwrap();
    assert_eq!(
        (rest.events, rest.rejected),
        (1, 0),
        "the stream frame survived intact"
    );
    assert_eq!(a.await, Ok(Outcome::Decided(Verdict::Approved)));
    assert_eq!(b.await, Ok(Outcome::Decided(Verdict::Denied)));
}

#[tokio::test]
async fn a_rejected_frame_with_seq_u64_max_never_moves_last_seq() {
    let (sink, _clock) = manual_sink();
    let w = sink.wait("req-1", HOUR);
    // A peer's worst value on a frame that is rejected (PENDING is no verdict).
    let bad = stream(&[verdict_event(u64::MAX, "req-1", wire(Decision::Pending))]);
    let r = sink.ingest_bytes(&bad).unwrap();
    assert_eq!((r.rejected, r.last_seq), (1, 0));
    let good = stream(&[verdict_event(1, "req-1", wire(Decision::Approved))]);
    let r = sink.ingest_bytes(&good).unwrap();
    assert_eq!((r.events, r.duplicates, r.last_seq), (1, 0, 1));
    assert_eq!(w.await, Ok(Outcome::Decided(Verdict::Approved)));
}

/// Issue #12: a one-shot source used to stop for good after one guest
/// fault. Now the pump offers the chunk to the fresh instance again.
#[tokio::test]
async fn reader_source_pump_survives_a_guest_fault() {
    use tokio::io::AsyncWriteExt;
    let (sink, _) = manual_sink();
    let first = sink.wait("req-1", HOUR);
    let (mut writer, reader) = tokio::io::duplex(1024);
    let pump = sink.pump(ReaderSource::new(reader, "duplex"));
    let frame = |seq, id: &str| stream(&[verdict_event(seq, id, wire(Decision::Approved))]);
    writer.write_all(&frame(1, "req-1")).await.unwrap();
    assert_eq!(first.await, Ok(Outcome::Decided(Verdict::Approved)));
    // The next guest call (the pump's ingest of the next chunk) traps.
    sink.inject_trap();
    writer.write_all(&frame(2, "req-2")).await.unwrap();
    approval_tests::time::eventually(|| async { sink.resume_point().last_seq == 2 }).await;
    assert_eq!(
        sink.wait("req-2", HOUR).await,
        Ok(Outcome::Decided(Verdict::Approved)),
        "the chunk reached the fresh instance"
    );
    writer.write_all(&frame(3, "req-3")).await.unwrap();
    drop(writer);
    pump.finished().await;
    let s = sink.stats().await;
    assert_eq!((s.resets, s.last_seq), (1, 3));
}

#[tokio::test]
async fn a_second_pump_on_one_sink_is_refused() {
    let (sink, _) = manual_sink();
    let (_writer, reader) = tokio::io::duplex(64);
    let first = sink.pump(ReaderSource::new(reader, "first"));
    let (_writer2, reader2) = tokio::io::duplex(64);
    let second = sink.pump(ReaderSource::new(reader2, "second"));
    let s = second.stats();
    assert!(s.finished, "{s:?}");
    assert!(
        s.last_error
            .unwrap_or_default()
            .contains("already has a pump")
    );
    assert!(!first.stats().finished);
    // Once the first is gone, the stream can be claimed again.
    drop(first);
    approval_tests::time::eventually(|| async {
        let (_w, r) = tokio::io::duplex(64);
        let third = sink.pump(ReaderSource::new(r, "third"));
        !third.stats().finished || third.stats().last_error.is_none()
    })
    .await;
}
