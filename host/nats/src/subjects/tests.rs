//! The log format of `subjects.rs`: appended fields, subject tokens, log
//! ids, and the checked-in vectors they write.

use super::*;
use approval_proto::{ApprovalResolved, Event, InvalidationEvent, PolicyInvalidated};
use prost::Message;

use crate::golden;

#[test]
fn appended_seq_and_log_id_override_whatever_the_payload_says() {
    let stored = InvalidationEvent {
        seq: 7,
        log_id: 9,
        event: Some(Event::ApprovalResolved(ApprovalResolved {
            request_id: "req-1".into(),
            decision: 1,
            ..Default::default()
        })),
    }
    .encode_to_vec();
    for (seq, log) in [(1, 1), (u64::MAX, u64::MAX), (300, 0xdead_beef)] {
        let mut out = Vec::new();
        append_frame(&mut out, &stored, seq, log);
        let event = InvalidationEvent::decode_length_delimited(&out[..]).unwrap();
        assert_eq!((event.seq, event.log_id), (seq, log));
        assert!(matches!(event.event, Some(Event::ApprovalResolved(r)) if r.request_id == "req-1"));
    }
    let unsequenced = InvalidationEvent::decode(&unsequenced_frame(&stored)[..]).unwrap();
    assert_eq!(unsequenced.seq, 0, "a lookup's frame is never sequenced");
}

#[test]
fn subjects_are_one_token_per_id_whatever_the_id() {
    assert_eq!(resolved_subject("req-1"), "approvals.v1.resolved.cmVxLTE");
    let odd = resolved_subject("a.b *>\u{e9}");
    let token = odd.strip_prefix("approvals.v1.resolved.").unwrap();
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(invalidated_subject(""), INVALIDATED_ALL);
    assert_eq!(
        filter_subjects("agent-7"),
        [
            RESOLVED_SUBJECTS,
            INVALIDATED_ALL,
            "approvals.v1.invalidated.agent.YWdlbnQtNw"
        ]
    );
}

#[test]
fn the_log_id_changes_with_the_stream_and_its_creation() {
    let a = log_id_of("APPROVALS", 1_700_000_000_000_000_001);
    assert_ne!(a, 0);
    assert_eq!(a, log_id_of("APPROVALS", 1_700_000_000_000_000_001));
    assert_ne!(a, log_id_of("APPROVALS", 1_700_000_000_000_000_002));
    assert_ne!(a, log_id_of("OTHER", 1_700_000_000_000_000_001));
}

/// `tests/vectors/nats.json`: what this module writes for fixed inputs.
#[test]
fn nats_vectors_are_what_this_module_writes() {
    use serde_json::json;
    let ids = ["req-1", "", "a.b *>\u{e9}", "ünïcødé/ü", &"x".repeat(256)];
    let subjects: Vec<_> = ids
        .iter()
        .map(|id| {
            json!({
                "id": id,
                "resolved": resolved_subject(id),
                "invalidated": invalidated_subject(id),
            })
        })
        .collect();
    let log_ids: Vec<_> = [
        ("APPROVALS", 1_700_000_000_000_000_001i128),
        ("APPROVALS", 0),
        ("OTHER", 1_764_000_000_123_456_789),
        ("APPROVALS", -1),
    ]
    .iter()
    .map(|(name, at)| {
        json!({
            "stream": name,
            "created_unix_ns": at.to_string(),
            "log_id": log_id_of(name, *at).to_string(),
        })
    })
    .collect();
    let message_ids: Vec<_> = [("req-1", 1), ("req-1", 2), ("ü", 1)]
        .iter()
        .map(|(id, decision)| {
            json!({ "request_id": id, "decision": decision, "message_id": message_id(id, *decision) })
        })
        .collect();
    let stored = [
        stored_bytes(Event::ApprovalResolved(ApprovalResolved {
            request_id: "req-1".into(),
            decision: 1,
            reviewer: "alice".into(),
            resolved_at_unix_ms: 1_764_000_000_000,
            ..Default::default()
        })),
        stored_bytes(Event::PolicyInvalidated(PolicyInvalidated {
            agent_id: "agent-7".into(),
        })),
    ];
    let frames: Vec<_> = [(0, 0, 1u64), (0, 1, 0xdead_beef), (1, 300, u64::MAX)]
        .iter()
        .map(|&(which, seq, log_id)| {
            let mut frame = Vec::new();
            append_frame(&mut frame, &stored[which], seq, log_id);
            json!({
                "stored": golden::hex(&stored[which]),
                "seq": seq.to_string(),
                "log_id": log_id.to_string(),
                "frame": golden::hex(&frame),
                "unsequenced": golden::hex(&unsequenced_frame(&stored[which])),
            })
        })
        .collect();
    golden::check(
        "nats.json",
        &json!({
            "spec": "SPEC.md §5.4: NATS subjects, log ids, message ids, and frames made of stored messages. \
                     u64 values are decimal strings; byte strings are lowercase hex; `frame` is \
                     length-delimited, `unsequenced` is a frame body.",
            "subjects": subjects,
            "log_ids": log_ids,
            "message_ids": message_ids,
            "frames": frames,
        }),
    );
}
