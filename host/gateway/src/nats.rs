//! The gateway over the shared JetStream log (feature `nats`): stateless,
//! so any number of gateways serve one stream (SPEC.md §9).
//!
//! # Invariants
//!
//! * `Subscribe` has the in-memory log's `(log_id, last_seq)` semantics: a
//!   subscriber of this log (or of an unknown one, id 0) resumes after its
//!   `last_seq_seen`; one that names another log gets the stream from its
//!   start. Each event carries the stream sequence and the log id.
//! * `Resolve` publishes conditionally ([`VerdictLog::publish_verdict`]):
//!   the first verdict per id wins across every gateway; the same decision
//!   again succeeds with the stored seq, the other one is `ALREADY_EXISTS`
//!   naming the verdict that stands.
//! * A subscription reads the log through [`follow`], as a sink's source
//!   does, so it ends (`UNAVAILABLE`) when the stream is replaced by another
//!   log, and the subscriber resubscribes into the new one.
//! * Each `Subscribe` is one ordered consumer in the broker: bound them
//!   with the account's JetStream limits (`max_consumers`); the in-memory
//!   log's `max_subscribers` does not apply here.
//! * A stored message that does not decode as an event is skipped and
//!   logged: only gateways publish to the log, so it is a fault to report,
//!   never a reason to end a subscriber's stream.

use crate::EventStream;
use crate::auth::Reviewers;
use approval_nats::{NatsError, Published, VerdictConflict, VerdictLog, follow};
use approval_proto::{ApprovalResolved, Event, InvalidationEvent, PolicyInvalidated};
use async_nats::jetstream::consumer::DeliverPolicy;
use futures::StreamExt;
use prost::Message;
use tonic::Status;

fn unavailable(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("event log: {e}"))
}

/// The subscription of `agent_id` after `last_seq_seen` of `log_id`.
pub(super) async fn subscribe(
    log: &VerdictLog,
    agent_id: &str,
    last_seq_seen: u64,
    log_id: u64,
) -> Result<EventStream, Status> {
    let mut stream = log
        .context()
        .get_stream(&log.config().stream)
        .await
        .map_err(unavailable)?;
    let current = approval_nats::log_id(stream.info().await.map_err(unavailable)?);
    let same_log = log_id == 0 || log_id == current;
    let deliver_policy = if same_log && last_seq_seen > 0 {
        DeliverPolicy::ByStartSequence {
            start_sequence: last_seq_seen.saturating_add(1),
        }
    } else {
        DeliverPolicy::All
    };
    let mut stored = follow(
        log.context(),
        &stream,
        log.config(),
        agent_id,
        deliver_policy,
        current,
    )
    .await
    .map_err(log_error)?;
    let events = async_stream::stream! {
        loop {
            let next = stored.next().await;
            let (seq, payload) = match next {
                Some(Ok(stored)) => stored,
                // Includes the stream replaced by another log: the
                // subscriber resubscribes and gets the new log (S16).
                Some(Err(e)) => {
                    yield Err(unavailable(e));
                    break;
                }
                None => break,
            };
            match InvalidationEvent::decode(&payload[..]) {
                Ok(mut event) => {
                    event.seq = seq;
                    event.log_id = current;
                    yield Ok(event);
                }
                Err(e) => {
                    tracing::error!(seq, error = %e, "skipping a stored message that is not an event");
                }
            }
        }
    };
    Ok(Box::pin(events))
}

/// Publishes a validated (and, with trusted keys, verified) verdict. With
/// trusted keys, a verdict already stored for the id is verified too: one
/// that does not verify was stored bypassing the gateways, and is reported
/// as a forgery (`FAILED_PRECONDITION`), never as the reviewer's success.
pub(super) async fn resolve(
    log: &VerdictLog,
    resolved: &ApprovalResolved,
    reviewers: Option<&Reviewers>,
) -> Result<u64, Status> {
    match publish_checked(log, resolved, reviewers).await {
        Ok(published) => Ok(published.seq),
        Err(conflict @ VerdictConflict::Decided { .. }) => {
            Err(Status::already_exists(conflict.to_string()))
        }
        Err(forgery @ VerdictConflict::Forged { .. }) => {
            tracing::error!(
                request_id = %resolved.request_id,
                "FORGERY in the log: {forgery}"
            );
            Err(Status::failed_precondition(forgery.to_string()))
        }
        Err(VerdictConflict::Log(e)) => Err(log_error(e)),
    }
}

/// Publishes `resolved` into the log, checking a verdict that stood before
/// with `reviewers` when there are any
/// ([`VerdictLog::publish_verified`]); what a gateway and `resolve --nats`
/// both do.
pub async fn publish_checked(
    log: &VerdictLog,
    resolved: &ApprovalResolved,
    reviewers: Option<&Reviewers>,
) -> Result<Published, VerdictConflict> {
    match reviewers {
        Some(reviewers) => {
            log.publish_verified(resolved, |stored| reviewers.check(stored))
                .await
        }
        None => log.publish_verdict(resolved).await,
    }
}

/// The verdicts stored for `ids` (the first message on each id's subject),
/// each as the event that published it.
pub(super) async fn lookup(
    log: &VerdictLog,
    ids: &[String],
) -> Result<Vec<InvalidationEvent>, Status> {
    let log_id = log.log_id().await.map_err(log_error)?;
    let mut events = Vec::new();
    for id in ids {
        if let Some((resolved, seq)) = log.stored_verdict(id).await.map_err(log_error)? {
            events.push(InvalidationEvent {
                seq,
                event: Some(Event::ApprovalResolved(resolved)),
                log_id,
            });
        }
    }
    Ok(events)
}

/// Publishes a policy invalidation.
pub(super) async fn invalidate(
    log: &VerdictLog,
    invalidated: &PolicyInvalidated,
) -> Result<u64, Status> {
    log.publish_invalidation(invalidated)
        .await
        .map_err(log_error)
}

fn log_error(e: NatsError) -> Status {
    match e {
        NatsError::Refused { .. } => Status::permission_denied(e.to_string()),
        e => unavailable(e),
    }
}
