//! S17 through the real component: with trusted reviewer keys configured,
//! only a verdict signed by one of them is applied. Each forgery is
//! rejected as a typed error, counted (`unauthenticated`), never delivered
//! or remembered, and never moves `last_seq`; the waiter stays pending and
//! the genuine verdict still wins afterwards.

use approval_host::trust::AuthFailure;
use approval_host::{
    ApprovalSink, DecidedBy, Decision, ManualClock, Outcome, ReviewerKey, SinkConfig, SinkError,
    TrustedKey, Verdict,
};
use approval_tests::events::{frame, resolved_event, signed, stream, verdict_event, wire};
use approval_tests::time::{SEC, settle};
use std::time::Duration;

fn key(id: &str) -> ReviewerKey {
    ReviewerKey::generate(id).expect("key")
}

/// A sink on virtual time that trusts `keys`.
fn trusting(keys: &[&ReviewerKey]) -> (ApprovalSink, ManualClock) {
    trusting_with(keys, SinkConfig::default())
}

fn trusting_with(keys: &[&ReviewerKey], config: SinkConfig) -> (ApprovalSink, ManualClock) {
    let clock = ManualClock::new();
    let sink = ApprovalSink::builder()
        .clock(clock.clone())
        .config(config)
        .trusted_keys(keys.iter().map(|k| k.trusted()))
        .build()
        .expect("sink");
    (sink, clock)
}

#[tokio::test]
async fn a_valid_signature_approves_and_names_its_reviewer() {
    let alice = key("alice");
    let (sink, _clock) = trusting(&[&alice]);
    let wait = sink.wait_detailed("req-1", 30 * SEC);
    sink.push_frame(&frame(&resolved_event(
        1,
        signed(&alice, "req-1", Decision::Approved),
    )))
    .expect("a signed verdict by a trusted key is applied");
    let resolution = wait.await.expect("decided");
    assert_eq!(resolution.outcome, Outcome::Decided(Verdict::Approved));
    assert_eq!(
        resolution.decided_by,
        Some(DecidedBy {
            decision: Verdict::Approved,
            reviewer: Some("alice".into()),
            key_id: Some("alice".into()),
            resolved_at_unix_ms: Some(1_700_000_000_000),
        })
    );
    let stats = sink.stats().await;
    assert_eq!((stats.delivered, stats.unauthenticated), (1, 0));
}

#[tokio::test]
async fn every_forgery_is_rejected_counted_and_leaves_the_waiter_pending() {
    let alice = key("alice");
    let mallory = key("mallory");
    let (sink, clock) = trusting(&[&alice]);
    let wait = sink.wait("req-1", 30 * SEC);

    let unsigned = resolved_event(
        1,
        approval_proto::ApprovalResolved {
            request_id: "req-1".into(),
            decision: wire(Decision::Approved),
            reviewer: "alice".into(),
            ..Default::default()
        },
    );
    let untrusted = resolved_event(2, signed(&mallory, "req-1", Decision::Approved));
    // Mallory signs, but names Alice's key.
    let mut forged = signed(&mallory, "req-1", Decision::Approved);
    forged.key_id = "alice".into();
    // Alice's genuine approval of another request, moved onto this one.
    let mut moved = signed(&alice, "req-other", Decision::Approved);
    moved.request_id = "req-1".into();
    // Alice denied; the decision byte flipped on the way.
    let mut flipped = signed(&alice, "req-1", Decision::Denied);
    flipped.decision = wire(Decision::Approved);
    // A signature of the wrong length.
    let mut truncated = signed(&alice, "req-1", Decision::Approved);
    truncated.signature.truncate(63);
    // Only one of key id / signature.
    let mut no_key = signed(&alice, "req-1", Decision::Approved);
    no_key.key_id.clear();

    let cases = [
        (unsigned, AuthFailure::Unsigned),
        (untrusted, AuthFailure::UntrustedKey),
        (resolved_event(3, forged), AuthFailure::BadSignature),
        (resolved_event(4, moved), AuthFailure::BadSignature),
        (resolved_event(5, flipped), AuthFailure::BadSignature),
        (resolved_event(6, truncated), AuthFailure::BadSignature),
        (resolved_event(7, no_key), AuthFailure::Unsigned),
    ];
    let n = cases.len() as u64;
    for (event, why) in cases {
        assert_eq!(
            sink.push_frame(&frame(&event)),
            Err(SinkError::Unauthenticated(why)),
            "seq {}",
            event.seq
        );
    }
    // And through a stream: rejected, counted, reported.
    let report = sink
        .ingest_bytes(&stream(&[verdict_event(
            8,
            "req-1",
            wire(Decision::Approved),
        )]))
        .expect("ingest");
    assert_eq!((report.events, report.rejected), (0, 1));
    assert_eq!(
        report.errors,
        vec![SinkError::Unauthenticated(AuthFailure::Unsigned)]
    );

    settle().await;
    let stats = sink.stats().await;
    assert_eq!(stats.unauthenticated, n + 1);
    assert_eq!(stats.malformed, 0, "a forgery is not malformed");
    assert_eq!((stats.delivered, stats.cached_verdicts), (0, 0));
    assert_eq!(stats.last_seq, 0, "no rejected frame moves last_seq");
    assert_eq!(sink.waiter_count(), 1, "the waiter is still pending");

    // The genuine verdict arrives last and still wins (a forged approval
    // never occupied the verdict memory).
    sink.push_frame(&frame(&resolved_event(
        9,
        signed(&alice, "req-1", Decision::Denied),
    )))
    .expect("genuine");
    assert_eq!(wait.await, Ok(Outcome::Decided(Verdict::Denied)));
    assert_eq!(sink.stats().await.last_seq, 9);
    drop(clock);
}

#[tokio::test]
async fn deliver_is_refused_while_keys_are_trusted() {
    let alice = key("alice");
    let (sink, clock) = trusting(&[&alice]);
    let wait = sink.wait("req-1", 5 * SEC);
    assert_eq!(
        sink.deliver("req-1", Decision::Approved),
        Err(SinkError::Unauthenticated(AuthFailure::Unsigned))
    );
    clock.advance(6 * SEC);
    assert_eq!(wait.await, Ok(Outcome::TimedOut));
    assert_eq!(sink.stats().await.unauthenticated, 1);
}

#[tokio::test]
async fn a_forged_verdict_first_never_blocks_the_genuine_one() {
    let alice = key("alice");
    let mallory = key("mallory");
    let (sink, _clock) = trusting(&[&alice]);
    // Early (no waiter yet): the forged denial arrives before Alice's approval.
    let mut forged = signed(&mallory, "req-1", Decision::Denied);
    forged.key_id = "alice".into();
    assert!(sink.push_frame(&frame(&resolved_event(1, forged))).is_err());
    sink.push_frame(&frame(&resolved_event(
        2,
        signed(&alice, "req-1", Decision::Approved),
    )))
    .expect("genuine");
    assert_eq!(
        sink.wait("req-1", 5 * SEC).await,
        Ok(Outcome::Decided(Verdict::Approved))
    );
    let stats = sink.stats().await;
    assert_eq!((stats.conflicts, stats.unauthenticated), (0, 1));
}

#[tokio::test]
async fn without_keys_unsigned_verdicts_work_as_before() {
    let (sink, _clock) = trusting(&[]);
    let wait = sink.wait_detailed("req-1", 5 * SEC);
    sink.push_frame(&frame(&verdict_event(1, "req-1", wire(Decision::Approved))))
        .expect("unsigned is fine without keys");
    let resolution = wait.await.expect("decided");
    assert_eq!(resolution.outcome, Outcome::Decided(Verdict::Approved));
    let by = resolution.decided_by.expect("attribution");
    assert_eq!(by.reviewer.as_deref(), Some("reviewer@example"));
    assert_eq!(by.key_id, None, "unsigned");
    // A direct deliver names nobody.
    let wait = sink.wait_detailed("req-2", 5 * SEC);
    sink.deliver("req-2", Decision::Denied).expect("deliver");
    let by = wait.await.expect("decided").decided_by.expect("remembered");
    assert_eq!(
        (by.decision, by.reviewer, by.key_id),
        (Verdict::Denied, None, None)
    );
}

#[tokio::test]
async fn a_timed_out_wait_names_nobody() {
    let (sink, clock) = trusting(&[]);
    let wait = sink.wait_detailed("req-1", SEC);
    clock.advance(2 * SEC);
    let resolution = wait.await.expect("timed out");
    assert_eq!(resolution.outcome, Outcome::TimedOut);
    assert_eq!(resolution.decided_by, None);
}

/// A fresh sink replaying a busy minute of signed verdicts in one
/// `ingest_bytes`: the host splits it into chunks that each verify well
/// under the call budget, and every verdict is applied.
#[tokio::test]
async fn a_large_signed_backlog_is_ingested_in_budget_sized_chunks() {
    let alice = key("alice");
    let (sink, _clock) = trusting_with(
        &[&alice],
        SinkConfig {
            // Small enough that one guest call could not verify them all.
            call_budget: Duration::from_millis(50),
            ..SinkConfig::default()
        },
    );
    let n = 1_000u64;
    let events: Vec<_> = (1..=n)
        .map(|seq| {
            resolved_event(
                seq,
                signed(&alice, &format!("req-{seq}"), Decision::Approved),
            )
        })
        .collect();
    let report = sink.ingest_bytes(&stream(&events)).expect("ingest");
    assert_eq!(report.events as u64, n);
    assert_eq!(report.last_seq, n);
    let stats = sink.stats().await;
    assert_eq!((stats.resets, stats.unauthenticated), (0, 0));
    assert_eq!(
        sink.wait("req-500", SEC).await,
        Ok(Outcome::Decided(Verdict::Approved))
    );
}

#[test]
fn bad_trusted_keys_fail_the_build() {
    let weak = TrustedKey {
        id: "weak".into(),
        public_key: {
            let mut identity = [0u8; 32];
            identity[0] = 1;
            identity
        },
    };
    let err = ApprovalSink::builder()
        .trusted_key(weak)
        .build()
        .err()
        .expect("a weak key is refused");
    // The guest's refusal is the error's source (HostError::Config).
    let why = std::error::Error::source(&err).map(ToString::to_string);
    assert!(
        why.as_deref().unwrap_or_default().contains("Ed25519"),
        "{err}: {why:?}"
    );
}
