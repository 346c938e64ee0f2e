//! Everything the guest reads, from arbitrary bytes: no input may trap the
//! guest, panic the host or disturb a waiter; bad frames are only counted.
//!
//! cargo-fuzz needs a nightly toolchain and `cargo install`, which CI here
//! does not have, so this is a proptest of arbitrary bytes (split into
//! arbitrary chunks) through the real component, plus the checked-in corpus
//! of interesting frames in `tests/corpus/`. The same bytes also go through
//! the guest's frame decoder natively.

use approval_guest::frames::{FrameDecoder, apply_frame};
use approval_guest::registry::{Registry, TimeSource};
use approval_host::{Decision, Outcome};
use approval_tests::events::{stream, verdict_event, wire};
use approval_tests::sinks::{manual_sink, proptest_cases};
use approval_tests::time::HOUR;
use proptest::prelude::*;

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
    prop_assert_eq!((s.resets, s.traps), (0, 0));
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

proptest! {
    #![proptest_config(ProptestConfig { cases: proptest_cases(2_000), failure_persistence: None, ..ProptestConfig::default() })]

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
    assert_eq!(w.await, Ok(Outcome::Decided(Decision::Approved)));
    // seqs 1 and 2: the first is a duplicate now, the second is applied.
    let r = sink.ingest_bytes(&read("valid-two-frames.bin")).unwrap();
    assert_eq!((r.events, r.duplicates), (1, 1));
    let s = sink.stats().await;
    assert_eq!((s.malformed, s.duplicates, s.last_seq), (3, 1, 2));
}
