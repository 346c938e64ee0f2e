//! `tests/vectors/frames.json` (SPEC.md §5.1, §5.2): `InvalidationEvent`s as
//! prost (the format's owner) encodes them, each body and its
//! length-delimited frame. Every hand-written encoder (the Python suite's
//! `frames.py`, the JavaScript harness) and the guest's decoder are tested
//! against it.

use approval_proto::{ApprovalResolved, Event, InvalidationEvent, PolicyInvalidated};
use prost::Message;
use serde_json::{Value, json};

#[path = "../../tests/vectors/golden.rs"]
mod golden;

/// An event's fields as the vector file spells them (64-bit values as
/// decimal strings).
fn event_json(e: &InvalidationEvent) -> Value {
    let event = match &e.event {
        Some(Event::ApprovalResolved(r)) => json!({ "approval_resolved": {
            "request_id": r.request_id,
            "decision": r.decision,
            "reviewer": r.reviewer,
            "resolved_at_unix_ms": r.resolved_at_unix_ms.to_string(),
            "key_id": r.key_id,
            "signature": golden::hex(&r.signature),
        }}),
        Some(Event::PolicyInvalidated(p)) => {
            json!({ "policy_invalidated": { "agent_id": p.agent_id } })
        }
        None => json!({}),
    };
    json!({ "seq": e.seq.to_string(), "log_id": e.log_id.to_string(), "event": event })
}

fn verdict(seq: u64, log_id: u64, resolved: ApprovalResolved) -> InvalidationEvent {
    InvalidationEvent {
        seq,
        event: Some(Event::ApprovalResolved(resolved)),
        log_id,
    }
}

#[test]
fn frames_vectors_are_what_prost_encodes() {
    let events = [
        (
            "an approval, seq 1",
            verdict(
                1,
                0,
                ApprovalResolved {
                    request_id: "req-1".into(),
                    decision: 1,
                    ..Default::default()
                },
            ),
        ),
        (
            "a denial with every field and a log id",
            verdict(
                300,
                0xdead_beef_0000_0001,
                ApprovalResolved {
                    request_id: "ünïcødé/ü".into(),
                    decision: 2,
                    reviewer: "alice@example".into(),
                    resolved_at_unix_ms: 1_764_000_000_000,
                    key_id: "alice".into(),
                    signature: (0..64).collect(),
                },
            ),
        ),
        (
            "extremes: seq and log id u64::MAX, a negative time",
            verdict(
                u64::MAX,
                u64::MAX,
                ApprovalResolved {
                    request_id: "x".into(),
                    decision: 1,
                    resolved_at_unix_ms: -1,
                    ..Default::default()
                },
            ),
        ),
        (
            "a non-verdict (PENDING): decodes, and the sink rejects it (S8)",
            verdict(
                2,
                0,
                ApprovalResolved {
                    request_id: "req-p".into(),
                    decision: 3,
                    ..Default::default()
                },
            ),
        ),
        (
            "an unsequenced invalidation for one agent",
            InvalidationEvent {
                seq: 0,
                event: Some(Event::PolicyInvalidated(PolicyInvalidated {
                    agent_id: "agent-7".into(),
                })),
                log_id: 0,
            },
        ),
        (
            "an invalidation for every agent",
            InvalidationEvent {
                seq: 5,
                event: Some(Event::PolicyInvalidated(PolicyInvalidated::default())),
                log_id: 9,
            },
        ),
    ];
    let cases: Vec<Value> = events
        .iter()
        .map(|(name, event)| {
            let mut fields = event_json(event);
            fields["name"] = json!(name);
            fields["body"] = json!(golden::hex(&event.encode_to_vec()));
            fields["frame"] = json!(golden::hex(&event.encode_length_delimited_to_vec()));
            fields
        })
        .collect();
    golden::check(
        "frames.json",
        &json!({
            "spec": "SPEC.md §5.1-5.2: InvalidationEvent bodies as prost encodes them, and each \
                     as a length-delimited frame. 64-bit values are decimal strings; byte \
                     strings are lowercase hex.",
            "events": cases,
        }),
    );
}
