//! The op buffer written and read back, and applied to a registry.

use super::*;

#[test]
fn operations_round_trip_in_order() {
    let mut w = OpWriter::new();
    w.register(7, 100, 5_000, "req-1");
    w.cancel(7);
    w.register(u64::MAX, u64::MAX, 0, "é");
    w.resolve("req-1", Verdict::Denied);
    let ops: Vec<_> = OpReader::new(w.bytes()).collect();
    assert_eq!(
        ops,
        [
            Ok(Op::Register {
                waiter: 7,
                start_ns: 100,
                timeout_ns: 5_000,
                id: "req-1"
            }),
            Ok(Op::Cancel { waiter: 7 }),
            Ok(Op::Register {
                waiter: u64::MAX,
                start_ns: u64::MAX,
                timeout_ns: 0,
                id: "é"
            }),
            Ok(Op::Resolve {
                id: "req-1",
                verdict: Verdict::Denied
            }),
        ]
    );
    w.clear(0);
    assert!(w.is_empty() && w.bytes().is_empty());
}

#[test]
fn a_bad_id_fails_one_op_and_truncation_ends_the_buffer() {
    let mut w = OpWriter::new();
    w.register(1, 0, 0, "ab");
    w.cancel(2);
    let mut bytes = w.bytes().to_vec();
    // Make the id invalid UTF-8: 0xff never starts a UTF-8 sequence.
    bytes[1 + 24 + 4] = 0xff;
    let ops: Vec<_> = OpReader::new(&bytes).collect();
    assert_eq!(ops, [Err(OpError::BadUtf8), Ok(Op::Cancel { waiter: 2 })]);

    bytes.truncate(bytes.len() - 1);
    let ops: Vec<_> = OpReader::new(&bytes).collect();
    assert_eq!(ops, [Err(OpError::BadUtf8), Err(OpError::Truncated)]);

    let ops: Vec<_> = OpReader::new(&[9, 1, 2, 3]).collect();
    assert_eq!(ops, [Err(OpError::Truncated)], "unknown tag ends it");
    let ops: Vec<_> = OpReader::new(&[RESOLVE, 0, 1, 0, 0, 0, b'x']).collect();
    assert_eq!(ops, [Err(OpError::UnknownDecision(0))]);
}

#[test]
fn any_bytes_decode_without_panicking() {
    // A cheap exhaustive-ish sweep: every prefix of a valid buffer and
    // every single-byte corruption of it.
    let mut w = OpWriter::new();
    w.register(1, 2, 3, "req");
    w.resolve("req", Verdict::Approved);
    w.cancel(1);
    let good = w.bytes().to_vec();
    for n in 0..=good.len() {
        let _ = OpReader::new(&good[..n]).count();
    }
    for i in 0..good.len() {
        for b in [0u8, 1, 2, 3, 0x7f, 0xff] {
            let mut bad = good.clone();
            bad[i] = b;
            let _ = OpReader::new(&bad).count();
        }
    }
}

#[test]
fn a_buffer_applies_in_order_and_failures_stay_their_own() {
    use crate::verdict::{Completion, Outcome};
    /// Time stands still at 0.
    struct Still;
    impl TimeSource for Still {
        fn now_ns(&self) -> u64 {
            0
        }
    }
    let mut registry = Registry::new(Still);
    let mut w = OpWriter::new();
    w.resolve("early", Verdict::Denied);
    w.register(1, 0, 1_000, "early");
    w.register(2, 0, 1_000, "req-1");
    w.register(3, 0, 1_000, "");
    w.register(4, 0, 1_000, "req-1");
    w.cancel(4);
    w.cancel(99);
    w.resolve("req-1", Verdict::Approved);
    let applied = apply(&mut registry, w.bytes());
    assert_eq!(applied.woken, 1, "waiter 4 was cancelled first");
    assert_eq!(
        applied.errors,
        [(3, OpFailure::Refused(RegistryError::RequestIdEmpty))]
    );
    let done: Vec<Completion> = registry.take_done();
    assert_eq!(done.len(), 2);
    assert!(
        done.iter()
            .any(|c| c.waiter == 1 && c.outcome == Outcome::Decided(Verdict::Denied))
    );
    assert!(
        done.iter()
            .any(|c| c.waiter == 2 && c.outcome == Outcome::Decided(Verdict::Approved))
    );
    let mut bytes = w.bytes().to_vec();
    bytes.push(0xee);
    let tail = apply(&mut Registry::new(Still), &bytes);
    assert_eq!(
        tail.errors.last(),
        Some(&(8, OpFailure::Read(OpError::Truncated)))
    );
}
