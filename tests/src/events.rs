//! Gateway events and frames as a gateway would encode them: the one set of
//! builders the suites, benches and examples share.

use approval_host::ReviewerKey;
use approval_proto::{ApprovalResolved, Decision, Event, InvalidationEvent, PolicyInvalidated};
use prost::Message;

/// A verdict event payload on `request_id` (any raw decision value), as a
/// gateway publishes it.
pub fn verdict(request_id: &str, decision: i32) -> Event {
    Event::ApprovalResolved(ApprovalResolved {
        request_id: request_id.to_string(),
        decision,
        reviewer: "reviewer@example".to_string(),
        resolved_at_unix_ms: 1_700_000_000_000,
        ..Default::default()
    })
}

/// An unsigned approval of `request_id` as a `Resolve` sends it (the
/// benches' reviewer traffic).
pub fn approval(request_id: String) -> ApprovalResolved {
    ApprovalResolved {
        request_id,
        decision: Decision::Approved as i32,
        reviewer: "reviewer@example".to_string(),
        resolved_at_unix_ms: 1_700_000_000_000,
        ..Default::default()
    }
}

/// A verdict on `request_id` signed by `key` (S17), as a reviewer's tool
/// sends it: the reviewer is the key's id.
pub fn signed(key: &ReviewerKey, request_id: &str, decision: Decision) -> ApprovalResolved {
    let mut verdict = ApprovalResolved {
        request_id: request_id.to_string(),
        decision: wire(decision),
        reviewer: key.id().to_string(),
        resolved_at_unix_ms: 1_700_000_000_000,
        ..Default::default()
    };
    key.sign(&mut verdict);
    verdict
}

/// One `InvalidationEvent` carrying `verdict`.
pub fn resolved_event(seq: u64, verdict: ApprovalResolved) -> InvalidationEvent {
    InvalidationEvent {
        seq,
        event: Some(Event::ApprovalResolved(verdict)),
        log_id: 0,
    }
}

/// One `InvalidationEvent` carrying a verdict (any raw decision value).
pub fn verdict_event(seq: u64, request_id: &str, decision: i32) -> InvalidationEvent {
    InvalidationEvent {
        seq,
        event: Some(verdict(request_id, decision)),
        log_id: 0,
    }
}

/// A policy invalidation payload (empty agent id: every agent).
pub fn invalidation(agent_id: &str) -> Event {
    Event::PolicyInvalidated(PolicyInvalidated {
        agent_id: agent_id.to_string(),
    })
}

/// One `InvalidationEvent` invalidating an agent's policy.
pub fn invalidation_event(seq: u64, agent_id: &str) -> InvalidationEvent {
    InvalidationEvent {
        seq,
        event: Some(invalidation(agent_id)),
        log_id: 0,
    }
}

/// A frame body (no length prefix) for `push_frame`.
pub fn frame(event: &InvalidationEvent) -> Vec<u8> {
    event.encode_to_vec()
}

/// A length-delimited stream of events, as a gateway sends them.
pub fn stream(events: &[InvalidationEvent]) -> Vec<u8> {
    events
        .iter()
        .flat_map(|e| e.encode_length_delimited_to_vec())
        .collect()
}

/// `n` approvals with seqs from `seq0`, each on its own request id
/// `req-<id_from + i>`, as one length-delimited stream (a busy gateway).
/// Bare verdicts (no reviewer, no timestamp): the smallest valid frames, as
/// the ingest benches have always measured.
pub fn approvals(n: usize, seq0: u64, id_from: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            InvalidationEvent {
                seq: seq0 + i as u64,
                event: Some(Event::ApprovalResolved(ApprovalResolved {
                    request_id: format!("req-{}", id_from + i),
                    decision: wire(Decision::Approved),
                    ..Default::default()
                })),
                log_id: 0,
            }
            .encode_length_delimited_to_vec()
        })
        .collect()
}

/// `Decision` as its wire value.
pub fn wire(d: Decision) -> i32 {
    d as i32
}

/// The outcome of a wait a reviewer decided with `decision` (a verdict).
///
/// # Panics
///
/// If `decision` is not a verdict (`Pending`, `Unspecified`).
pub fn decided(decision: Decision) -> approval_host::Outcome {
    approval_host::Outcome::Decided(approval_host::Verdict::try_from(decision).expect("a verdict"))
}
