//! The registry core, natively, with a manual clock. Async-waiter cases run
//! under two executors (`futures::executor` and tokio) to prove the core is
//! executor-agnostic: it only uses `futures` oneshots.

use approval_guest::config::Config;
use approval_guest::frames::{self, Applied, FrameDecoder, FrameError};
use approval_guest::registry::{
    Completion, Registered, Registry, RegistryError, Reply, TimeSource,
};
use approval_guest::verdict::{Outcome, Verdict};
use approval_proto::{ApprovalResolved, Decision, Event, InvalidationEvent, PolicyInvalidated};
use futures::channel::oneshot;
use prost::Message;
use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

const SEC: u64 = 1_000_000_000;

#[derive(Clone, Default)]
struct ManualClock(Rc<Cell<u64>>);

impl ManualClock {
    fn advance(&self, ns: u64) {
        self.0.set(self.0.get().saturating_add(ns));
    }
}

impl TimeSource for ManualClock {
    fn now_ns(&self) -> u64 {
        self.0.get()
    }
}

fn registry() -> (Registry<ManualClock>, ManualClock) {
    let clock = ManualClock::default();
    (Registry::new(clock.clone()), clock)
}

fn pending(r: &mut Registry<ManualClock>, waiter: u64, id: &str, timeout: u64) -> u64 {
    match r.register(waiter, id, timeout, Reply::Batched) {
        Ok(Registered::Pending(next)) => next,
        other => panic!("expected pending, got {other:?}"),
    }
}

fn done(waiter: u64, outcome: Outcome) -> Completion {
    Completion { waiter, outcome }
}

#[test]
fn verdict_resolves_every_waiter_on_the_id() {
    let (mut r, _) = registry();
    for w in 1..=3 {
        pending(&mut r, w, "req", 10 * SEC);
    }
    pending(&mut r, 9, "other", 10 * SEC);
    assert_eq!(r.resolve("req", Verdict::Approved).unwrap(), 3);
    let out = r.take_done();
    assert_eq!(out.len(), 3);
    assert!(
        out.iter()
            .all(|c| c.outcome == Outcome::Decided(Verdict::Approved))
    );
    assert_eq!(r.stats().waiters, 1);
    assert_eq!(r.stats().ids, 1);
}

#[test]
fn timeout_is_timed_out_never_denied_and_starts_at_registration() {
    let (mut r, clock) = registry();
    clock.advance(5 * SEC);
    assert_eq!(pending(&mut r, 1, "req", 2 * SEC), 7 * SEC);
    clock.advance(2 * SEC - 1);
    assert_eq!(r.expire(), 0);
    clock.advance(1);
    assert_eq!(r.expire(), 1);
    assert_eq!(r.take_done(), vec![done(1, Outcome::TimedOut)]);
    assert_eq!(r.stats().timed_out, 1);
}

#[test]
fn id_reuse_does_not_remove_newer_waiter() {
    let (mut r, clock) = registry();
    pending(&mut r, 1, "req", SEC);
    clock.advance(SEC / 2);
    pending(&mut r, 2, "req", 10 * SEC);
    clock.advance(SEC);
    assert_eq!(r.expire(), 1);
    assert_eq!(r.take_done(), vec![done(1, Outcome::TimedOut)]);
    assert_eq!(r.resolve("req", Verdict::Denied).unwrap(), 1);
    assert_eq!(
        r.take_done(),
        vec![done(2, Outcome::Decided(Verdict::Denied))]
    );
}

#[test]
fn cancel_removes_only_its_own_ticket() {
    let (mut r, _) = registry();
    pending(&mut r, 1, "req", SEC);
    pending(&mut r, 2, "req", SEC);
    assert!(r.cancel(1));
    assert!(!r.cancel(1), "second cancel finds nothing");
    assert_eq!(r.resolve("req", Verdict::Approved).unwrap(), 1);
    assert_eq!(
        r.take_done(),
        vec![done(2, Outcome::Decided(Verdict::Approved))]
    );
    assert_eq!(r.stats().cancelled, 1);
}

/// S4 as changed by S15 (issue #12): an early verdict is remembered, not
/// consumed by the first wait (this test used to assert consume-once).
#[test]
fn early_verdict_is_remembered_and_settles_every_later_wait() {
    let (mut r, _) = registry();
    assert_eq!(r.resolve("req", Verdict::Approved).unwrap(), 0);
    assert_eq!(r.stats().cached_verdicts, 1);
    for waiter in [1, 2] {
        assert_eq!(
            r.register(waiter, "req", SEC, Reply::Batched),
            Ok(Registered::Settled(Outcome::Decided(Verdict::Approved)))
        );
    }
    assert_eq!(r.stats().early_hits, 2);
    assert_eq!(r.stats().cached_verdicts, 1);
}

#[test]
fn a_verdict_is_final_the_opposite_is_a_counted_conflict() {
    let (mut r, _) = registry();
    pending(&mut r, 1, "req", SEC);
    assert_eq!(r.resolve("req", Verdict::Denied), Ok(1));
    assert_eq!(
        r.resolve("req", Verdict::Denied),
        Ok(0),
        "a repeat is harmless"
    );
    assert_eq!(
        r.resolve("req", Verdict::Approved),
        Err(RegistryError::ConflictingVerdict)
    );
    // The agent's retry settles with the first verdict.
    assert_eq!(
        r.register(2, "req", SEC, Reply::Batched),
        Ok(Registered::Settled(Outcome::Decided(Verdict::Denied)))
    );
    let s = r.stats();
    assert_eq!((s.conflicts, s.delivered, s.cached_verdicts), (1, 1, 1));
}

#[test]
fn early_verdict_cache_honours_ttl_and_capacity() {
    let (mut r, clock) = registry();
    let config = Config {
        verdict_cache_capacity: 2,
        verdict_cache_ttl_ns: 10 * SEC,
        ..Config::default()
    };
    r.configure(config, 16).unwrap();
    r.resolve("a", Verdict::Approved).unwrap();
    r.resolve("b", Verdict::Approved).unwrap();
    r.resolve("c", Verdict::Denied).unwrap();
    assert_eq!(r.stats().cached_verdicts, 2);
    assert_eq!(r.stats().evictions, 1, "oldest evicted first");
    pending(&mut r, 1, "a", SEC);
    clock.advance(11 * SEC);
    pending(&mut r, 2, "b", SEC);
    assert_eq!(r.stats().evictions, 2);
    assert_eq!(r.stats().cached_verdicts, 1);
    r.expire();
    assert_eq!(r.stats().cached_verdicts, 0, "expired entries are swept");
}

#[test]
fn duration_max_saturates_and_is_capped() {
    let (mut r, clock) = registry();
    clock.advance(SEC);
    let next = pending(&mut r, 1, "req", u64::MAX);
    assert_eq!(next, SEC + Config::default().max_timeout_ns);
    let (mut r2, clock2) = registry();
    r2.configure(
        Config {
            max_timeout_ns: u64::MAX,
            ..Config::default()
        },
        0,
    )
    .unwrap();
    clock2.advance(SEC);
    assert_eq!(pending(&mut r2, 1, "req", u64::MAX), u64::MAX);
}

#[test]
fn zero_timeout_expires_on_next_check() {
    let (mut r, _) = registry();
    pending(&mut r, 1, "req", 0);
    assert_eq!(r.expire(), 1);
}

#[test]
fn limits_give_typed_errors_and_leave_others_alone() {
    let (mut r, _) = registry();
    r.configure(
        Config {
            max_waiters: 2,
            max_request_id_bytes: 8,
            ..Config::default()
        },
        2,
    )
    .unwrap();
    pending(&mut r, 1, "a", SEC);
    assert_eq!(
        r.register(2, "", SEC, Reply::Batched),
        Err(RegistryError::RequestIdEmpty)
    );
    assert_eq!(
        r.register(2, "123456789", SEC, Reply::Batched),
        Err(RegistryError::RequestIdTooLong(9))
    );
    assert_eq!(
        r.register(1, "b", SEC, Reply::Batched),
        Err(RegistryError::DuplicateWaiter(1))
    );
    pending(&mut r, 2, "b", SEC);
    assert_eq!(
        r.register(3, "c", SEC, Reply::Batched),
        Err(RegistryError::TooManyWaiters(2))
    );
    assert_eq!(r.stats().waiters, 2);
    assert!(
        r.configure(Config::default(), 0).is_err(),
        "no reconfigure under live waiters"
    );
}

#[test]
fn removing_waiters_one_by_one_from_a_shared_id_keeps_the_rest_exact() {
    let (mut r, clock) = registry();
    for w in 0..1000 {
        pending(&mut r, w, "shared", if w % 2 == 0 { SEC } else { 10 * SEC });
    }
    // Cancel every third odd waiter, then let the even ones time out.
    let cancelled: Vec<u64> = (1..1000).step_by(6).collect();
    for &w in &cancelled {
        assert!(r.cancel(w));
    }
    clock.advance(SEC);
    assert_eq!(r.expire(), 500);
    r.take_done();
    // Reuse finished tickets: one on another id, one on the same id again.
    pending(&mut r, 0, "other", 10 * SEC);
    pending(&mut r, cancelled[0], "shared", 10 * SEC);
    let live = 500 - cancelled.len() + 1;
    assert_eq!(r.stats().waiters as usize, live + 1);
    assert_eq!(r.stats().ids, 2);
    assert_eq!(r.resolve("shared", Verdict::Denied).unwrap() as usize, live);
    let finished = r.take_done();
    assert_eq!(finished.len(), live, "each live waiter once, nobody else");
    assert!(finished.iter().all(|c| c.waiter % 2 == 1));
    assert!(finished.iter().any(|c| c.waiter == cancelled[0]));
    assert_eq!(r.stats().ids, 1, "only `other` is left");
    assert_eq!(r.resolve("other", Verdict::Approved).unwrap(), 1);
    assert_eq!(
        r.take_done(),
        vec![done(0, Outcome::Decided(Verdict::Approved))]
    );
}

#[test]
fn many_cancels_do_not_grow_the_deadline_heap_without_bound() {
    let (mut r, _) = registry();
    for w in 0..100_000 {
        pending(&mut r, w, "req", 3600 * SEC);
        assert!(r.cancel(w));
    }
    assert_eq!(r.stats().waiters, 0);
    assert_eq!(r.next_deadline(), None);
}

/// Ids are kept inside their entry up to 23 bytes and boxed beyond: ids on
/// either side of that line, and ids that differ only past it, are told
/// apart by every operation.
#[test]
fn ids_short_and_long_are_told_apart() {
    let (mut r, _) = registry();
    let base = "x".repeat(22);
    let ids = [
        base.clone(),                   // 22 bytes: inline
        format!("{base}a"),             // 23: inline, the longest
        format!("{base}ab"),            // 24: boxed
        format!("{base}ac"),            // 24: boxed, differs in the last byte
        format!("{}é", "y".repeat(21)), // 23 bytes, multibyte
        "z".repeat(256),                // the default limit
    ];
    for (w, id) in ids.iter().enumerate() {
        pending(&mut r, w as u64, id, 10 * SEC);
    }
    assert_eq!(r.stats().ids as usize, ids.len());
    assert_eq!(r.resolve(&ids[2], Verdict::Denied), Ok(1));
    assert_eq!(
        r.take_done(),
        vec![done(2, Outcome::Decided(Verdict::Denied))]
    );
    assert!(r.cancel(1));
    assert_eq!(
        r.resolve(&ids[1], Verdict::Approved),
        Ok(0),
        "its only waiter was cancelled"
    );
    for (w, id) in ids.iter().enumerate() {
        let expected = match w {
            1 => Some(Verdict::Approved),
            2 => Some(Verdict::Denied),
            _ => None,
        };
        assert_eq!(r.decided_by(id).map(|(v, _)| v), expected, "{id}");
    }
    assert_eq!(
        r.resolve(&ids[3], Verdict::Approved),
        Ok(1),
        "not ids[2]'s verdict"
    );
    assert_eq!(r.resolve(&ids[5], Verdict::Approved), Ok(1));
    assert_eq!(r.stats().waiters, 2, "ids[0] and ids[4] still wait");
}

/// A ticket reused on an id whose entry was dropped and made again is a
/// waiter of the new entry only: the old entry's stale listing of it
/// neither resolves nor removes it.
#[test]
fn a_reused_ticket_belongs_to_its_new_registration_only() {
    let (mut r, _) = registry();
    pending(&mut r, 1, "a", 10 * SEC);
    pending(&mut r, 2, "a", 10 * SEC);
    assert!(r.cancel(1), "ticket 1 stays listed on a, stale");
    pending(&mut r, 1, "b", 10 * SEC);
    assert_eq!(r.resolve("a", Verdict::Denied), Ok(1), "only ticket 2");
    assert_eq!(
        r.take_done(),
        vec![done(2, Outcome::Decided(Verdict::Denied))]
    );
    assert!(r.cancel(1), "ticket 1 still waits on b");
    pending(&mut r, 3, "c", 10 * SEC);
    assert!(r.cancel(3), "c's entry is dropped");
    pending(&mut r, 3, "c", 10 * SEC);
    assert_eq!(r.resolve("c", Verdict::Approved), Ok(1));
    assert_eq!(r.stats().waiters, 0);
    assert_eq!(r.stats().ids, 0);
}

/// Stale deadlines are dropped once they outnumber pending waiters, by
/// reading the waiter map (while it is small next to the queue) or by
/// asking it about each deadline (once it has grown far larger): either
/// way every pending waiter still times out at its own deadline, earliest
/// first, and no finished one does.
#[test]
fn dropping_stale_deadlines_keeps_every_pending_one() {
    for (waiters, left) in [(400u64, 60u64), (20_000, 40)] {
        let (mut r, clock) = registry();
        for w in 0..waiters {
            // Deadlines out of registration order.
            pending(
                &mut r,
                w,
                &format!("req-{w}"),
                (1 + (w * 7919) % waiters) * SEC,
            );
        }
        for w in left..waiters {
            assert_eq!(r.resolve(&format!("req-{w}"), Verdict::Approved), Ok(1));
        }
        r.take_done();
        let mut expected: Vec<(u64, u64)> =
            (0..left).map(|w| (1 + (w * 7919) % waiters, w)).collect();
        expected.sort();
        let mut got = Vec::new();
        for (deadline, _) in &expected {
            clock.0.set(deadline * SEC);
            r.expire();
            got.extend(r.take_done().into_iter().map(|c| {
                assert_eq!(c.outcome, Outcome::TimedOut);
                (*deadline, c.waiter)
            }));
        }
        assert_eq!(got, expected, "{waiters} waiters");
        assert_eq!(r.stats().waiters, 0);
    }
}

fn frame(seq: u64, event: Event) -> Vec<u8> {
    InvalidationEvent {
        seq,
        event: Some(event),
        log_id: 0,
    }
    .encode_length_delimited_to_vec()
}

fn verdict(id: &str, decision: i32) -> Event {
    Event::ApprovalResolved(ApprovalResolved {
        request_id: id.into(),
        decision,
        ..Default::default()
    })
}

/// Per-frame results, invalidated agent ids, and the fatal error if any.
type Ingested = (
    Vec<Result<Applied, FrameError>>,
    Vec<String>,
    Result<(), FrameError>,
);

fn ingest(r: &mut Registry<ManualClock>, d: &mut FrameDecoder, bytes: &[u8]) -> Ingested {
    let mut results = Vec::new();
    let mut invalidated = Vec::new();
    let fatal = d.feed(bytes, r.config().max_frame_bytes, |f| {
        results.push(frames::apply_frame(r, f, &mut |a: &str| {
            invalidated.push(a.to_owned())
        }))
    });
    (results, invalidated, fatal)
}

#[test]
fn frames_split_at_every_byte_boundary_decode_the_same() {
    let mut stream = Vec::new();
    stream.extend(frame(1, verdict("a", Decision::Approved as i32)));
    stream.extend(frame(
        2,
        Event::PolicyInvalidated(PolicyInvalidated {
            agent_id: "agent-7".into(),
        }),
    ));
    stream.extend(frame(3, verdict(&"x".repeat(200), Decision::Denied as i32)));
    for cut in 0..=stream.len() {
        let (mut r, _) = registry();
        let mut d = FrameDecoder::new();
        let (mut results, mut inv, fatal) = ingest(&mut r, &mut d, &stream[..cut]);
        fatal.unwrap();
        let (more, inv2, fatal) = ingest(&mut r, &mut d, &stream[cut..]);
        fatal.unwrap();
        results.extend(more);
        inv.extend(inv2);
        assert_eq!(
            results,
            vec![
                Ok(Applied::Resolved(0)),
                Ok(Applied::Invalidated),
                Ok(Applied::Resolved(0))
            ],
            "cut {cut}"
        );
        assert_eq!(inv, vec!["agent-7".to_string()]);
        assert_eq!(r.stats().last_seq, 3);
        assert_eq!(d.buffered(), 0);
    }
}

#[test]
fn bad_frames_are_counted_and_decoding_goes_on() {
    let (mut r, _) = registry();
    pending(&mut r, 1, "a", SEC);
    let mut d = FrameDecoder::new();
    let mut stream = frame(5, verdict("a", Decision::Pending as i32));
    stream.extend([3, 0xff, 0xff, 0xff]); // a 3-byte frame of garbage
    // The rejected seq 5 did not move `last_seq`: the same seq with a
    // valid verdict is applied, not a duplicate.
    stream.extend(frame(5, verdict("a", Decision::Approved as i32)));
    stream.extend(frame(0, verdict("a", 42)));
    stream.extend(frame(5, verdict("b", Decision::Approved as i32))); // duplicate seq
    stream.extend(frame(6, verdict("a", Decision::Approved as i32)));
    let (results, _, fatal) = ingest(&mut r, &mut d, &stream);
    fatal.unwrap();
    assert_eq!(results[0], Err(FrameError::UnknownDecision(3)));
    assert!(matches!(results[1], Err(FrameError::Malformed(_))));
    assert_eq!(results[2], Ok(Applied::Resolved(1)));
    assert_eq!(results[3], Err(FrameError::UnknownDecision(42)));
    assert_eq!(results[4], Ok(Applied::Duplicate));
    assert_eq!(results[5], Ok(Applied::Resolved(0)));
    let s = r.stats();
    assert_eq!(
        (s.malformed, s.duplicates, s.delivered, s.last_seq),
        (3, 1, 1, 6)
    );
}

#[test]
fn a_rejected_frame_never_moves_last_seq() {
    let (mut r, _) = registry();
    pending(&mut r, 1, "a", SEC);
    let mut d = FrameDecoder::new();
    // A peer's worst value: seq u64::MAX on a frame that is rejected.
    let mut stream = frame(u64::MAX, verdict("a", Decision::Pending as i32));
    stream.extend(frame(u64::MAX, verdict("", Decision::Approved as i32)));
    stream.extend(frame(1, verdict("a", Decision::Approved as i32)));
    let (results, _, fatal) = ingest(&mut r, &mut d, &stream);
    fatal.unwrap();
    assert_eq!(results[0], Err(FrameError::UnknownDecision(3)));
    assert!(matches!(results[1], Err(FrameError::BadRequestId(_))));
    assert_eq!(results[2], Ok(Applied::Resolved(1)), "seq 1 is applied");
    let s = r.stats();
    assert_eq!((s.malformed, s.duplicates, s.last_seq), (2, 0, 1));
}

#[test]
fn oversized_prefix_is_fatal_and_resets_the_decoder() {
    let (mut r, _) = registry();
    let mut d = FrameDecoder::new();
    let mut stream = frame(1, verdict("a", Decision::Approved as i32));
    prost::encoding::encode_varint(1 << 20, &mut stream);
    stream.extend([0; 16]);
    let (results, _, fatal) = ingest(&mut r, &mut d, &stream);
    assert_eq!(
        results,
        vec![Ok(Applied::Resolved(0))],
        "frames before the bad prefix apply"
    );
    assert_eq!(fatal, Err(FrameError::TooLarge(1 << 20)));
    assert_eq!(d.buffered(), 0);
    let (_, _, fatal) = ingest(&mut r, &mut d, &[0xff; 11]);
    assert_eq!(fatal, Err(FrameError::BadPrefix));
}

// ---- async waiters, under two executors ----

/// Runs one async case under `futures::executor` and under tokio.
fn on_both_executors<F: Future<Output = ()>>(case: impl Fn() -> F) {
    futures::executor::block_on(case());
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(case());
}

fn async_waiter(
    r: &mut Registry<ManualClock>,
    w: u64,
    id: &str,
    timeout: u64,
) -> oneshot::Receiver<Outcome> {
    let (tx, rx) = oneshot::channel();
    assert!(matches!(
        r.register(w, id, timeout, Reply::Async(tx)),
        Ok(Registered::Pending(_))
    ));
    rx
}

#[test]
fn async_waiters_get_verdicts_timeouts_and_cancels() {
    on_both_executors(|| async {
        let (mut r, clock) = registry();
        let a = async_waiter(&mut r, 1, "req", SEC);
        let b = async_waiter(&mut r, 2, "req", SEC);
        pending(&mut r, 3, "req", SEC);
        let c = async_waiter(&mut r, 4, "slow", SEC);
        let d = async_waiter(&mut r, 5, "gone", SEC);
        assert_eq!(
            r.resolve("req", Verdict::Denied).unwrap(),
            3,
            "verdict reaches both kinds"
        );
        assert_eq!(a.await, Ok(Outcome::Decided(Verdict::Denied)));
        assert_eq!(b.await, Ok(Outcome::Decided(Verdict::Denied)));
        assert_eq!(
            r.take_done(),
            vec![done(3, Outcome::Decided(Verdict::Denied))]
        );
        assert!(r.cancel(5));
        assert_eq!(d.await, Ok(Outcome::Cancelled));
        clock.advance(SEC);
        r.expire();
        assert_eq!(c.await, Ok(Outcome::TimedOut));
        assert_eq!(r.stats().waiters, 0);
    });
}

#[test]
fn dropped_async_receiver_does_not_disturb_others() {
    on_both_executors(|| async {
        let (mut r, _) = registry();
        drop(async_waiter(&mut r, 1, "req", SEC));
        let b = async_waiter(&mut r, 2, "req", SEC);
        assert_eq!(r.resolve("req", Verdict::Approved).unwrap(), 2);
        assert_eq!(b.await, Ok(Outcome::Decided(Verdict::Approved)));
    });
}

#[test]
fn resolve_checks_the_request_id_itself_and_changes_nothing() {
    let (mut r, _) = registry();
    assert_eq!(
        r.resolve("", Verdict::Approved),
        Err(RegistryError::RequestIdEmpty)
    );
    assert_eq!(
        r.resolve(&"x".repeat(257), Verdict::Approved),
        Err(RegistryError::RequestIdTooLong(257))
    );
    let s = r.stats();
    assert_eq!(
        (s.cached_verdicts, s.malformed),
        (0, 0),
        "direct calls are not frames"
    );
}

#[test]
fn an_event_of_another_log_opens_a_new_window() {
    let (mut r, _) = registry();
    let framed = |seq, log_id, id: &str| {
        InvalidationEvent {
            seq,
            event: Some(verdict(id, Decision::Approved as i32)),
            log_id,
        }
        .encode_length_delimited_to_vec()
    };
    let mut d = FrameDecoder::new();
    let mut stream = framed(5, 7, "a");
    stream.extend(framed(5, 7, "a")); // a duplicate in log 7
    stream.extend(framed(1, 9, "b")); // log 9 restarted at 1: applied
    stream.extend(framed(1, 0, "c")); // no log id: judged in the window of 9
    stream.extend(framed(0, 3, "d")); // unsequenced: applied, opens no window
    stream.extend(framed(2, 9, "e"));
    let (results, _, fatal) = ingest(&mut r, &mut d, &stream);
    fatal.unwrap();
    assert_eq!(
        results,
        vec![
            Ok(Applied::Resolved(0)),
            Ok(Applied::Duplicate),
            Ok(Applied::Resolved(0)),
            Ok(Applied::Duplicate),
            Ok(Applied::Resolved(0)),
            Ok(Applied::Resolved(0)),
        ]
    );
    let s = r.stats();
    assert_eq!((s.log_id, s.last_seq, s.log_changes), (9, 2, 1));
    // A host carrying the point over to a fresh instance.
    let (mut fresh, _) = registry();
    fresh.window().resume_from(9, 2);
    assert!(fresh.window().is_duplicate(2, 9));
    assert!(
        !fresh.window().is_duplicate(1, 4),
        "another log is never a duplicate"
    );
}

#[test]
fn the_hash_seed_comes_from_the_configuration() {
    use core::hash::BuildHasher;
    let (a, b) = (
        approval_guest::config::seeded(1),
        approval_guest::config::seeded(2),
    );
    assert_ne!(
        a.hash_one("req-1"),
        b.hash_one("req-1"),
        "the seed keys the hash"
    );
    // Reconfiguring with a seed rebuilds the maps; what is remembered stays.
    let (mut r, _) = registry();
    r.resolve("early", Verdict::Approved).unwrap();
    r.configure(
        Config {
            hash_seed: 0xfeed,
            ..Config::default()
        },
        16,
    )
    .unwrap();
    assert_eq!(r.config().hash_seed, 0xfeed);
    assert_eq!(
        r.register(1, "early", SEC, Reply::Batched),
        Ok(Registered::Settled(Outcome::Decided(Verdict::Approved)))
    );
    pending(&mut r, 2, "later", SEC);
    assert_eq!(r.resolve("later", Verdict::Denied), Ok(1));
}
