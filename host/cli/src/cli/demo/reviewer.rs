//! The simulated reviewer: decides each request as planned, after a
//! human-like delay, and with `--signed` signs every verdict while an
//! attacker publishes an approval first (unsigned, self-signed, or forged
//! in the reviewer's name).

use super::plan::Plan;
use super::transport::Reviewer;
use approval_host::{Decision, ReviewerKey};
use approval_proto::{ApprovalResolved, Event, PolicyInvalidated};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The keys of `--signed`: the reviewer's, trusted by the sink, and the
/// attacker's.
pub(super) struct Keys {
    pub(super) reviewer: ReviewerKey,
    pub(super) attacker: ReviewerKey,
}

impl Keys {
    /// The attacker's approval of `request_id`, one of three kinds in turn.
    fn forgery(&self, request_id: String, n: u64) -> ApprovalResolved {
        let mut forged = ApprovalResolved {
            request_id,
            decision: Decision::Approved as i32,
            reviewer: self.reviewer.id().into(),
            ..Default::default()
        };
        match n % 3 {
            // Unsigned.
            0 => {}
            // Signed by the attacker's own (untrusted) key.
            1 => self.attacker.sign(&mut forged),
            // Signed by the attacker, claiming the reviewer's key.
            _ => {
                self.attacker.sign(&mut forged);
                forged.key_id = self.reviewer.id().into();
            }
        }
        forged
    }
}

/// With `--signed`, each answered agent's (forgery, signed verdict), made
/// before the run starts so signing never delays the reviewer.
pub(super) type Signed = Vec<Option<(ApprovalResolved, ApprovalResolved)>>;

/// Every answered agent's forgery and signed verdict.
pub(super) fn sign_all(keys: &Keys, plans: &[Plan]) -> Signed {
    plans
        .iter()
        .enumerate()
        .map(|(agent, p)| {
            let (decision, _) = p.verdict?;
            let mut verdict = ApprovalResolved {
                request_id: format!("req-{agent}"),
                decision: decision as i32,
                reviewer: keys.reviewer.id().into(),
                ..Default::default()
            };
            keys.reviewer.sign(&mut verdict);
            Some((
                keys.forgery(verdict.request_id.clone(), agent as u64),
                verdict,
            ))
        })
        .collect()
}

/// What the reviewer did.
#[derive(Debug, Default)]
pub(super) struct Reviewed {
    /// Events it published (protobuf frames or gateway calls).
    pub(super) published: u64,
    /// Forgeries a verifying gateway refused before they reached the log.
    pub(super) refused_at_gateway: u64,
}

/// Sends the planned verdicts in 5 ms batches, as protobuf frames or
/// through the gateway, forgeries first with `--signed`.
pub(super) async fn review(
    reviewer: Reviewer,
    plans: Arc<Vec<Plan>>,
    start: Instant,
    signed: Option<Signed>,
) -> Reviewed {
    let mut reviewed = Reviewed::default();
    let mut due: Vec<(Duration, usize, Decision)> = plans
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.verdict.map(|(d, at)| (at, i, d)))
        .collect();
    due.sort_by_key(|&(at, i, _)| (at, i));
    let mut seq = 0u64;
    let mut next = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    while next < due.len() {
        tick.tick().await;
        let now = start.elapsed();
        let mut batch = Vec::new();
        while let Some(&(at, agent, decision)) = due.get(next) {
            if at > now {
                break;
            }
            seq += 1;
            if seq.is_multiple_of(500) {
                // A policy change now and then shares the stream.
                batch.push(Event::PolicyInvalidated(PolicyInvalidated {
                    agent_id: format!("agent-{agent}"),
                }));
                continue;
            }
            next += 1;
            let mut verdict = ApprovalResolved {
                request_id: format!("req-{agent}"),
                decision: decision as i32,
                reviewer: "demo-reviewer".into(),
                ..Default::default()
            };
            if let Some(Some((forged, genuine))) = signed.as_ref().map(|s| &s[agent]) {
                // The attacker's approval goes first, so a sink that let it
                // in would keep it (S15: the first verdict wins).
                batch.push(Event::ApprovalResolved(forged.clone()));
                seq += 1;
                verdict = genuine.clone();
            }
            batch.push(Event::ApprovalResolved(verdict));
        }
        match reviewer.publish(batch, seq).await {
            Ok(refused) => reviewed.refused_at_gateway += refused,
            Err(e) => tracing::error!(error = %e, "publishing verdicts failed"),
        }
    }
    reviewed.published = seq;
    reviewed
}
