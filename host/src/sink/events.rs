//! [`InvalidationSink`]: the original sink's event interface, as the
//! gateway's stream handler calls it, over [`ApprovalSink`].

use super::ApprovalSink;
use crate::outcome::Decision;
use approval_proto::{Event, InvalidationEvent, PolicyInvalidated};
use prost::Message;

/// The seed's event interface: what a gateway's invalidation stream calls.
/// It takes `&str`, as the original's does, so it stays usable as `dyn`.
pub trait InvalidationSink {
    /// A reviewer decided on `request_id`.
    fn on_approval_resolved(&self, request_id: &str, decision: Decision);
    /// An agent's policy changed (empty id: every agent).
    fn on_policy_invalidated(&self, agent_id: &str);
}

impl InvalidationSink for ApprovalSink {
    fn on_approval_resolved(&self, request_id: &str, decision: Decision) {
        if let Err(e) = self.deliver(request_id, decision) {
            tracing::warn!(request_id, ?decision, error = %e, "verdict rejected");
        }
    }

    fn on_policy_invalidated(&self, agent_id: &str) {
        // The guest forwards invalidations (and counts them) only from
        // frames, so this is handed to it as one.
        let frame = InvalidationEvent {
            event: Some(Event::PolicyInvalidated(PolicyInvalidated {
                agent_id: agent_id.to_owned(),
            })),
            ..InvalidationEvent::default()
        }
        .encode_to_vec();
        if let Err(e) = self.push_frame(&frame) {
            tracing::warn!(agent_id, error = %e, "policy invalidation rejected");
        }
    }
}
