//! The golden vectors of the formats this crate owns (SPEC.md §5):
//! `tests/vectors/ops.json` (the op buffer, `ops`), `journal.json` (the
//! verdict journal, `journal`) and `signing.json` (the signing bytes,
//! `trust`, with a known key, its signatures and the signed frames). Each
//! is written from this crate's own code; the Python and JavaScript hosts
//! read them.

use approval_guest::journal;
use approval_guest::ops::{Op, OpReader, OpWriter};
use approval_guest::trust::{TrustedKeys, signing_bytes};
use approval_guest::verdict::Verdict;
use approval_guest::wire;
use approval_proto::{ApprovalResolved, Event, InvalidationEvent};
use ed25519_dalek::{Signer, SigningKey};
use prost::Message;
use serde_json::{Value, json};

#[path = "../../tests/vectors/golden.rs"]
mod golden;
use golden::hex;

/// One operation as the vector file spells it (u64s as decimal strings).
fn op_json(op: &Op<'_>) -> Value {
    match *op {
        Op::Register {
            waiter,
            start_ns,
            timeout_ns,
            id,
        } => json!({
            "op": "register",
            "waiter": waiter.to_string(),
            "start_ns": start_ns.to_string(),
            "timeout_ns": timeout_ns.to_string(),
            "id": id,
        }),
        Op::Cancel { waiter } => json!({ "op": "cancel", "waiter": waiter.to_string() }),
        Op::Resolve { id, verdict } => json!({
            "op": "resolve",
            "decision": verdict.decision() as i32,
            "id": id,
        }),
    }
}

#[test]
fn ops_vectors_are_what_the_writer_writes() {
    let cases: [(&str, &[Op<'_>]); 4] = [
        (
            "a wait and its verdict: one round trip",
            &[
                Op::Register {
                    waiter: 7,
                    start_ns: 100,
                    timeout_ns: 5_000_000_000,
                    id: "req-1",
                },
                Op::Resolve {
                    id: "req-1",
                    verdict: Verdict::Approved,
                },
            ],
        ),
        (
            "a cancel and a denial",
            &[
                Op::Cancel { waiter: 7 },
                Op::Resolve {
                    id: "req-2",
                    verdict: Verdict::Denied,
                },
            ],
        ),
        (
            "extremes: u64::MAX fields, an empty id, a multibyte id",
            &[
                Op::Register {
                    waiter: u64::MAX,
                    start_ns: u64::MAX,
                    timeout_ns: u64::MAX,
                    id: "",
                },
                Op::Register {
                    waiter: 1 << 32,
                    start_ns: 0,
                    timeout_ns: 0,
                    id: "ünïcødé/ü",
                },
            ],
        ),
        ("nothing", &[]),
    ];
    let cases: Vec<Value> = cases
        .iter()
        .map(|(name, ops)| {
            let mut w = OpWriter::new();
            for op in *ops {
                match *op {
                    Op::Register {
                        waiter,
                        start_ns,
                        timeout_ns,
                        id,
                    } => w.register(waiter, start_ns, timeout_ns, id),
                    Op::Cancel { waiter } => w.cancel(waiter),
                    Op::Resolve { id, verdict } => w.resolve(id, verdict),
                }
            }
            let read: Vec<Op<'_>> = OpReader::new(w.bytes()).map(Result::unwrap).collect();
            assert_eq!(&read[..], *ops, "{name}: the reader reads what was written");
            json!({
                "name": name,
                "ops": ops.iter().map(op_json).collect::<Vec<_>>(),
                "bytes": hex(w.bytes()),
            })
        })
        .collect();
    golden::check(
        "ops.json",
        &json!({
            "spec": "SPEC.md §5.5: the op buffer of registry.apply. u64 values are decimal \
                     strings; `bytes` is lowercase hex of the whole buffer.",
            "cases": cases,
        }),
    );
}

#[test]
fn journal_vectors_are_what_the_guest_writes() {
    let entries = [
        ("req-1", Verdict::Approved, 7u64),
        ("", Verdict::Denied, 0),
        ("ünïcødé/ü", Verdict::Denied, u64::MAX),
        (
            "x".repeat(256).leak() as &str,
            Verdict::Approved,
            1_700_000_000_000_000_000,
        ),
    ];
    let mut bytes = Vec::new();
    for (id, verdict, at) in entries {
        journal::append(&mut bytes, id, verdict, at);
    }
    let read: Vec<_> = journal::entries(&bytes)
        .map(|e| (e.id, e.verdict, e.stored_at))
        .collect();
    assert_eq!(read, entries, "the reader reads what was written");
    golden::check(
        "journal.json",
        &json!({
            "spec": "SPEC.md §5.6: verdict journal entries. u64 values are decimal strings; \
                     `bytes` is lowercase hex of every entry in order.",
            "header_bytes": journal::HEADER_BYTES,
            "entries": entries.iter().map(|(id, verdict, at)| json!({
                "id": id,
                "decision": verdict.decision() as i32,
                "stored_at": at.to_string(),
            })).collect::<Vec<_>>(),
            "bytes": hex(&bytes),
        }),
    );
}

#[test]
fn signing_vectors_verify_and_are_what_the_guest_signs_over() {
    // A fixed, public test key: a vector, never a secret.
    let seed: [u8; 32] = core::array::from_fn(|i| i as u8 + 1);
    let key = SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    let key_id = "vector-reviewer";
    let mut trusted = TrustedKeys::default();
    trusted.set([(key_id, &public[..])]).unwrap();
    let verdicts = [
        ("req-1", Verdict::Approved, "alice", 1_764_000_000_000i64),
        ("req-2", Verdict::Denied, "", 0),
        ("ünïcødé/ü", Verdict::Denied, "bob@example", -1),
    ];
    let cases: Vec<Value> = verdicts
        .iter()
        .enumerate()
        .map(|(i, &(id, verdict, reviewer, at))| {
            let message = signing_bytes(id, verdict, reviewer, at);
            let signature = key.sign(&message).to_bytes();
            let resolved = ApprovalResolved {
                request_id: id.into(),
                decision: verdict.decision() as i32,
                reviewer: reviewer.into(),
                resolved_at_unix_ms: at,
                key_id: key_id.into(),
                signature: signature.to_vec(),
            };
            let fields = wire::Resolved::from(&resolved);
            assert_eq!(trusted.verify(&fields, verdict), Ok(()), "{id} verifies");
            let frame = InvalidationEvent {
                seq: i as u64 + 1,
                event: Some(Event::ApprovalResolved(resolved)),
                log_id: 0,
            }
            .encode_to_vec();
            json!({
                "request_id": id,
                "decision": verdict.decision() as i32,
                "reviewer": reviewer,
                "resolved_at_unix_ms": at.to_string(),
                "signing_bytes": hex(&message),
                "signature": hex(&signature),
                "frame": hex(&frame),
            })
        })
        .collect();
    golden::check(
        "signing.json",
        &json!({
            "spec": "SPEC.md §5.3: signing bytes v1 and Ed25519 signatures by a fixed test key. \
                     i64 values are decimal strings; byte strings are lowercase hex; `frame` is \
                     an InvalidationEvent body (seq = index + 1) carrying the signed verdict.",
            "key": {
                "id": key_id,
                "seed": hex(&seed),
                "public_key": hex(&public),
            },
            "verdicts": cases,
        }),
    );
}

/// `tests/vectors/frames.json` (prost's encoding): the guest's own decoder
/// reads every body to the same fields.
#[test]
fn the_guest_decodes_the_frames_vectors() {
    let vectors = golden::read("frames.json");
    for case in vectors["events"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let body = golden::unhex(case["body"].as_str().unwrap());
        let event = wire::decode(&body).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(
            event.seq.to_string(),
            case["seq"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            event.log_id.to_string(),
            case["log_id"].as_str().unwrap(),
            "{name}"
        );
        let pinned = &case["event"];
        match event.payload {
            Some(wire::Payload::Resolved(r)) => {
                let p = &pinned["approval_resolved"];
                assert_eq!(r.request_id, p["request_id"].as_str().unwrap(), "{name}");
                assert_eq!(
                    i64::from(r.decision),
                    p["decision"].as_i64().unwrap(),
                    "{name}"
                );
                assert_eq!(r.reviewer, p["reviewer"].as_str().unwrap(), "{name}");
                assert_eq!(
                    r.resolved_at_unix_ms.to_string(),
                    p["resolved_at_unix_ms"].as_str().unwrap(),
                    "{name}"
                );
                assert_eq!(r.key_id, p["key_id"].as_str().unwrap(), "{name}");
                assert_eq!(hex(r.signature), p["signature"].as_str().unwrap(), "{name}");
            }
            Some(wire::Payload::Invalidated(agent)) => {
                let p = &pinned["policy_invalidated"];
                assert_eq!(agent, p["agent_id"].as_str().unwrap(), "{name}");
            }
            None => panic!("{name}: no event"),
        }
        let frame = golden::unhex(case["frame"].as_str().unwrap());
        assert!(
            frame.ends_with(&body),
            "{name}: the frame is the body behind its length"
        );
    }
}
