//! Sinks on a `ManualClock`, and frames as a gateway would encode them.

use approval_host::{ApprovalSink, ManualClock, SinkConfig};
use approval_proto::{ApprovalResolved, Decision, Event, InvalidationEvent, PolicyInvalidated};
use prost::Message;

/// A sink on the embedded component with virtual time.
pub fn manual_sink() -> (ApprovalSink, ManualClock) {
    manual_sink_with(SinkConfig::default())
}

/// A sink on the embedded component with virtual time and `config`.
pub fn manual_sink_with(config: SinkConfig) -> (ApprovalSink, ManualClock) {
    let clock = ManualClock::new();
    let sink = ApprovalSink::builder()
        .clock(clock.clone())
        .config(config)
        .build()
        .expect("the embedded component builds");
    (sink, clock)
}

/// One `InvalidationEvent` carrying a verdict (any raw decision value).
pub fn verdict_event(seq: u64, request_id: &str, decision: i32) -> InvalidationEvent {
    InvalidationEvent {
        seq,
        event: Some(Event::ApprovalResolved(ApprovalResolved {
            request_id: request_id.to_string(),
            decision,
            reviewer: "reviewer@example".to_string(),
            resolved_at_unix_ms: 1_700_000_000_000,
        })),
    }
}

/// One `InvalidationEvent` invalidating an agent's policy.
pub fn invalidation_event(seq: u64, agent_id: &str) -> InvalidationEvent {
    InvalidationEvent {
        seq,
        event: Some(Event::PolicyInvalidated(PolicyInvalidated {
            agent_id: agent_id.to_string(),
        })),
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

/// `Decision` as its wire value.
pub fn wire(d: Decision) -> i32 {
    d as i32
}

/// Lets spawned tasks (the sink's timer) run; on a current-thread runtime a
/// task woken by `ManualClock::advance` runs within one yield.
pub async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

/// Cases per proptest property: `PROPTEST_CASES` from the environment, else
/// `default`.
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
