//! Everything the guest reads, from arbitrary bytes: no input may trap the
//! guest, panic the host or disturb a waiter; bad frames are only counted.
//!
//! cargo-fuzz needs a nightly toolchain and `cargo install`, which CI here
//! does not have, so this is a proptest of arbitrary bytes (split into
//! arbitrary chunks) through the real component, plus the checked-in corpus
//! of interesting frames in `tests/corpus/`. The same bytes also go through
//! the guest's frame decoder natively. Signed frames (S17) are flipped too:
//! no flip may turn a forgery into an applied verdict.

use approval_guest::frames::{FrameDecoder, apply_frame};
use approval_guest::registry::{Registry, TimeSource};
use approval_guest::wire::{self, Payload};
use approval_host::{ApprovalSink, Decision, Outcome, ReviewerKey, TrustedKey, Verdict};
use approval_proto::{Event, InvalidationEvent};
use approval_tests::events::{frame, resolved_event, signed, stream, verdict_event, wire};
use approval_tests::sinks::{manual_sink, proptest_cases};
use approval_tests::time::HOUR;
use proptest::prelude::*;
use prost::Message;

struct Zero;
impl TimeSource for Zero {
    fn now_ns(&self) -> u64 {
        0
    }
}

/// Feeds `chunks` to a fresh sink that has one live waiter, then checks the
/// sink is healthy: no reset, and the waiter still gets a real verdict.
async fn survives(chunks: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let (sink, _clock) = manual_sink();
    let w = sink.wait("victim", HOUR);
    for chunk in chunks {
        prop_assert!(
            sink.ingest_bytes(chunk).is_ok(),
            "ingest never fails the call"
        );
    }
    sink.end_stream();
    let s = sink.stats().await;
    prop_assert_eq!(s.resets, 0);
    // Garbage may have resolved "victim" only through a well-formed verdict.
    sink.ingest_bytes(&stream(&[verdict_event(
        0,
        "victim",
        wire(Decision::Approved),
    )]))
    .unwrap();
    let out = w.await.unwrap();
    prop_assert!(matches!(out, Outcome::Decided(_)), "{:?}", out);
    Ok(())
}

fn chunked() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8)
}

/// Valid frames with a few bytes flipped: closer to what a broken peer sends.
fn mutated() -> impl Strategy<Value = Vec<Vec<u8>>> {
    (
        1u64..50,
        proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        1usize..64,
    )
        .prop_map(|(n, flips, chunk)| {
            let events: Vec<_> = (0..n)
                .map(|i| verdict_event(i + 1, &format!("req-{i}"), (i % 5) as i32))
                .collect();
            let mut bytes = stream(&events);
            for (at, value) in flips {
                let len = bytes.len();
                bytes[at % len] = value;
            }
            bytes.chunks(chunk).map(<[u8]>::to_vec).collect()
        })
}

/// Alice's signed denial of "victim", Mallory's own signed approval of it,
/// then the same stream with bytes flipped (S17): whatever the flips hit
/// (decision, id, reviewer, time, key id, signature), a sink that trusts
/// Alice only ever applies a verdict her signature covers, so "victim" is
/// never approved, and nothing traps.
fn mutated_signed() -> impl Strategy<Value = (Vec<(usize, u8)>, usize)> {
    (
        proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        1usize..64,
    )
}

/// Alice's public key, the stream above, and Alice's denial as one frame:
/// signed once per thread (signing in a debug build is slow).
struct SignedCase {
    alice: TrustedKey,
    stream: Vec<u8>,
    genuine: Vec<u8>,
}

impl SignedCase {
    fn new() -> Self {
        let alice = ReviewerKey::generate("alice").unwrap();
        let mallory = ReviewerKey::generate("mallory").unwrap();
        SignedCase {
            alice: alice.trusted(),
            stream: stream(&[
                resolved_event(1, signed(&mallory, "victim", Decision::Approved)),
                resolved_event(2, signed(&alice, "victim", Decision::Denied)),
            ]),
            genuine: frame(&resolved_event(
                0,
                signed(&alice, "victim", Decision::Denied),
            )),
        }
    }
}

async fn never_approved_by_a_forgery(
    case: &SignedCase,
    flips: &[(usize, u8)],
    chunk: usize,
) -> Result<(), TestCaseError> {
    let sink = ApprovalSink::builder()
        .trusted_key(case.alice.clone())
        .build()
        .unwrap();
    let w = sink.wait("victim", HOUR);
    let mut bytes = case.stream.clone();
    for &(at, value) in flips {
        let len = bytes.len();
        bytes[at % len] = value;
    }
    for piece in bytes.chunks(chunk) {
        prop_assert!(sink.ingest_bytes(piece).is_ok());
    }
    sink.end_stream();
    let s = sink.stats().await;
    prop_assert_eq!(s.resets, 0);
    if sink.waiter_count() == 1 {
        // Not decided by the stream: a genuine verdict still lands.
        sink.push_frame(&case.genuine).unwrap();
    }
    prop_assert_eq!(w.await.unwrap(), Outcome::Decided(Verdict::Denied));
    Ok(())
}

/// The guest's borrowed decoder gives prost's answer for `bytes`: both
/// refuse, or both read the same event.
fn decodes_like_prost(bytes: &[u8]) -> Result<(), TestCaseError> {
    let ours = wire::decode(bytes);
    let theirs = InvalidationEvent::decode(bytes);
    match (ours, theirs) {
        (Err(_), Err(_)) => {}
        (Ok(ours), Ok(theirs)) => {
            prop_assert_eq!((ours.seq, ours.log_id), (theirs.seq, theirs.log_id));
            match (ours.payload, theirs.event) {
                (None, None) => {}
                (Some(Payload::Invalidated(a)), Some(Event::PolicyInvalidated(p))) => {
                    prop_assert_eq!(a, p.agent_id.as_str());
                }
                (Some(Payload::Resolved(r)), Some(Event::ApprovalResolved(p))) => {
                    prop_assert_eq!(
                        (
                            r.request_id,
                            r.decision,
                            r.reviewer,
                            r.resolved_at_unix_ms,
                            r.key_id,
                            r.signature
                        ),
                        (
                            p.request_id.as_str(),
                            p.decision,
                            p.reviewer.as_str(),
                            p.resolved_at_unix_ms,
                            p.key_id.as_str(),
                            p.signature.as_slice()
                        )
                    );
                }
                (ours, theirs) => prop_assert!(false, "{:?} vs {:?}", ours, theirs),
            }
        }
        (ours, theirs) => prop_assert!(false, "{:?} vs {:?}", ours, theirs),
    }
    Ok(())
}

/// Frames that stay close to valid: real events (every field set, both
/// payloads, payload fields repeated so merges happen, unknown fields and
/// groups) with a few bytes flipped.
fn near_valid_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u64>(),
        any::<bool>(),
        ".{0,8}",
        any::<i32>(),
        any::<i64>(),
        proptest::collection::vec(any::<u8>(), 0..70),
        proptest::collection::vec(any::<u8>(), 0..24),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    )
        .prop_map(
            |(seq, resolved, text, decision, at, signature, tail, flips)| {
                let payload = if resolved {
                    Event::ApprovalResolved(approval_proto::ApprovalResolved {
                        request_id: text.clone(),
                        decision,
                        reviewer: text.clone(),
                        resolved_at_unix_ms: at,
                        key_id: text,
                        signature,
                    })
                } else {
                    Event::PolicyInvalidated(approval_proto::PolicyInvalidated { agent_id: text })
                };
                let event = InvalidationEvent {
                    seq,
                    event: Some(payload),
                    log_id: seq.rotate_left(7),
                };
                // The event, then raw bytes: more fields, unknown ones, a
                // second payload to merge, groups, or garbage.
                let mut bytes = event.encode_to_vec();
                bytes.extend_from_slice(&event.encode_to_vec());
                bytes.extend_from_slice(&tail);
                for (at, value) in flips {
                    let len = bytes.len();
                    bytes[at % len] = value;
                }
                bytes
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: proptest_cases(2_000), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_borrowed_decoder_answers_like_prost_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        decodes_like_prost(&bytes)?;
    }

    #[test]
    fn the_borrowed_decoder_answers_like_prost_on_near_valid_frames(bytes in near_valid_frame()) {
        decodes_like_prost(&bytes)?;
    }

    #[test]
    fn mutated_signed_frames_never_approve_what_alice_denied((flips, chunk) in mutated_signed()) {
        thread_local! {
            static CASE: SignedCase = SignedCase::new();
        }
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        CASE.with(|case| rt.block_on(never_approved_by_a_forgery(case, &flips, chunk)))?;
    }

    #[test]
    fn arbitrary_bytes_never_trap_the_component(chunks in chunked()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(survives(&chunks))?;
    }

    #[test]
    fn mutated_frames_never_trap_the_component(chunks in mutated()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(survives(&chunks))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_native_decoder(chunks in chunked()) {
        let mut registry = Registry::new(Zero);
        let mut decoder = FrameDecoder::new();
        for chunk in &chunks {
            let _ = decoder.feed(chunk, 64 * 1024, |frame| {
                let _ = apply_frame(&mut registry, frame, &mut |_| {});
            });
        }
    }
}

#[tokio::test]
async fn corpus_of_interesting_frames_is_handled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus is checked in");
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        survives(std::slice::from_ref(&bytes))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // One byte at a time, too: every split point.
        let singles: Vec<Vec<u8>> = bytes.iter().map(|b| vec![*b]).collect();
        survives(&singles)
            .await
            .unwrap_or_else(|e| panic!("{name} bytewise: {e}"));
    }
}

#[tokio::test]
async fn corpus_frames_have_the_documented_outcomes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let (sink, _clock) = manual_sink();
    let w = sink.wait("req-1", HOUR);
    let r = sink.ingest_bytes(&read("decision-pending.bin")).unwrap();
    assert_eq!(r.rejected, 1, "PENDING is not a verdict");
    let r = sink.ingest_bytes(&read("invalid-utf8-id.bin")).unwrap();
    assert_eq!(r.rejected, 1, "a non-UTF-8 id fails to decode");
    let r = sink.ingest_bytes(&read("never-ending-varint.bin")).unwrap();
    assert!(r.fatal.is_some(), "framing is lost");
    // seq 1 after the rejected seq 3: a rejected frame never moves
    // `last_seq`, so seq 1 is applied (issue #12 changed this from "a
    // duplicate").
    let r = sink.ingest_bytes(&read("valid-approved.bin")).unwrap();
    assert_eq!((r.events, r.duplicates), (1, 0));
    assert_eq!(sink.waiter_count(), 0, "the approval reached req-1");
    assert_eq!(w.await, Ok(Outcome::Decided(Verdict::Approved)));
    // seqs 1 and 2: the first is a duplicate now, the second is applied.
    let r = sink.ingest_bytes(&read("valid-two-frames.bin")).unwrap();
    assert_eq!((r.events, r.duplicates), (1, 1));
    let s = sink.stats().await;
    assert_eq!((s.malformed, s.duplicates, s.last_seq), (3, 1, 2));
}
