//! [`VerdictLog`]: publishing to the JetStream log so that only the first
//! verdict per request id is ever stored, across any number of stateless
//! gateways (S15 enforced in the log), and reading a stored verdict back.
//!
//! # Invariants
//!
//! * A verdict is published with `Nats-Expected-Last-Subject-Sequence: 0`:
//!   JetStream stores it only if its id's subject is empty.
//! * A retried publish carries the same `Nats-Msg-Id` (a digest of id and
//!   decision), so JetStream drops the duplicate within its window; after
//!   the window, the conditional publish fails. Either way the verdict
//!   stored on the id's subject is read and compared: the same decision
//!   reads as success, whatever message took the id.
//! * A different decision for a decided id is [`VerdictConflict::Decided`],
//!   carrying the stored verdict; nothing is published.
//! * [`VerdictLog::publish_verified`] never answers "published" or "stands"
//!   for a stored verdict its caller's check refuses: someone who bypassed
//!   the gateways put it there, and it is [`VerdictConflict::Forged`].

use crate::config::NatsConfig;
use crate::error::NatsError;
use crate::subjects::{log_id, message_id, resolved_subject, stored_message};
use approval_proto::{ApprovalResolved, Event, InvalidationEvent, PolicyInvalidated};
use async_nats::jetstream;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::{PublishMessage, StreamMessage};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use prost::Message;
use std::time::Duration;

/// How often a publish whose acknowledgement was lost is sent again.
pub(crate) const PUBLISH_ATTEMPTS: u32 = 3;

/// A verdict that stands in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its stream sequence.
    pub seq: u64,
    /// It was already stored (this publish was a repeat of it).
    pub already_stood: bool,
}

/// Why a verdict was not stored.
#[derive(Debug, thiserror::Error)]
pub enum VerdictConflict {
    /// Another decision already stands for the id (first wins).
    #[error("{} already stands for {} (seq {seq})", decision_name(.stored.decision), .stored.request_id)]
    Decided {
        /// The verdict that stands.
        stored: Box<ApprovalResolved>,
        /// Its stream sequence.
        seq: u64,
    },
    /// The verdict stored for the id fails the caller's check (not signed
    /// by a trusted key): it was published bypassing the gateways, and
    /// nothing was published now.
    #[error(
        "the verdict stored for {} (seq {seq}) is a forgery: {why}; nothing was published",
        .stored.request_id
    )]
    Forged {
        /// The stored verdict.
        stored: Box<ApprovalResolved>,
        /// Its stream sequence.
        seq: u64,
        /// Why the check refused it.
        why: String,
    },
    /// The log could not be reached or refused the publish.
    #[error(transparent)]
    Log(#[from] NatsError),
}

fn decision_name(decision: i32) -> &'static str {
    approval_proto::Decision::try_from(decision).map_or("an unknown decision", |d| d.as_str_name())
}

/// The log as a publisher and reader of verdicts sees it.
#[derive(Clone)]
pub struct VerdictLog {
    config: NatsConfig,
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
}

impl VerdictLog {
    /// Connects and binds (or creates) the stream.
    pub async fn open(config: NatsConfig, timeout: Duration) -> Result<Self, NatsError> {
        let client = config.connect(timeout).await?;
        let mut js = jetstream::new(client);
        js.set_timeout(timeout);
        let stream = config.ensure_stream(&js).await?;
        Ok(VerdictLog { config, js, stream })
    }

    /// The JetStream context (for consumers over the same connection).
    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }

    /// Where this log connects.
    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// The stream's current id (S16), read from the server: another one
    /// after the stream was deleted and created again.
    pub async fn log_id(&self) -> Result<u64, NatsError> {
        let info = self
            .js
            .get_stream(&self.config.stream)
            .await
            .map_err(|e| self.config.error(e))?
            .get_info()
            .await
            .map_err(|e| self.config.error(e))?;
        Ok(log_id(&info))
    }

    /// Publishes `resolved` unless a verdict stands for its id (see the
    /// module's invariants). `resolved` must already be validated (and its
    /// signature checked, where sinks require signatures).
    pub async fn publish_verdict(
        &self,
        resolved: &ApprovalResolved,
    ) -> Result<Published, VerdictConflict> {
        match self.publish_or_find(resolved).await? {
            Outcome::Stored(seq) => Ok(Published {
                seq,
                already_stood: false,
            }),
            Outcome::Standing(stored, seq) => compare(stored, seq, resolved),
        }
    }

    /// [`publish_verdict`](Self::publish_verdict), with the verdict that
    /// stood before (the same decision or the other) checked: one about
    /// another request id (a signature covers its own id: a verdict copied
    /// onto another id's subject verifies, but is not that id's) or one
    /// `check` refuses is [`VerdictConflict::Forged`], never the caller's
    /// success nor an ordinary conflict. `check` is the caller's signature
    /// verification with its trusted keys.
    pub async fn publish_verified(
        &self,
        resolved: &ApprovalResolved,
        check: impl Fn(&ApprovalResolved) -> Result<(), String>,
    ) -> Result<Published, VerdictConflict> {
        let (stored, seq) = match self.publish_or_find(resolved).await? {
            Outcome::Stored(seq) => {
                return Ok(Published {
                    seq,
                    already_stood: false,
                });
            }
            Outcome::Standing(stored, seq) => (stored, seq),
        };
        let why = if stored.request_id != resolved.request_id {
            Some(format!("it is a verdict on {:?}", stored.request_id))
        } else {
            check(&stored).err()
        };
        match why {
            Some(why) => Err(VerdictConflict::Forged {
                stored: Box::new(stored),
                seq,
                why,
            }),
            None => compare(stored, seq, resolved),
        }
    }

    /// Publishes `resolved` conditionally; on a repeat (a duplicate message
    /// id, or a subject that holds a verdict already) reads what stands on
    /// the id's subject instead. A duplicate id is no proof of what stands:
    /// the message id names only (id, decision), and JetStream dedupes
    /// before it checks the subject, so any message may have taken it.
    async fn publish_or_find(&self, resolved: &ApprovalResolved) -> Result<Outcome, NatsError> {
        let (subject, payload) = stored_message(Event::ApprovalResolved(resolved.clone()));
        let message_id = message_id(&resolved.request_id, resolved.decision);
        let mut last_error = String::new();
        for _ in 0..PUBLISH_ATTEMPTS {
            let publish = PublishMessage::build()
                .payload(payload.clone().into())
                .message_id(&message_id)
                .expected_last_subject_sequence(0);
            let acked = match self.js.send_publish(subject.clone(), publish).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match acked {
                Ok(ack) if !ack.duplicate => return Ok(Outcome::Stored(ack.sequence)),
                Ok(_) => return self.standing(&resolved.request_id).await,
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    return self.standing(&resolved.request_id).await;
                }
                Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                    return Err(self.config.error(e));
                }
                // A lost acknowledgement: send again; the message id makes
                // a repeat harmless.
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(self
            .config
            .error(format_args!("publishing {subject}: {last_error}")))
    }

    /// The verdict standing on `request_id`'s subject.
    async fn standing(&self, request_id: &str) -> Result<Outcome, NatsError> {
        match self.stored_verdict(request_id).await? {
            Some((stored, seq)) => Ok(Outcome::Standing(stored, seq)),
            // The subject had a message a moment ago; one purged since
            // cannot be told apart from an outage: refuse, never guess.
            None => Err(self.config.error(format_args!(
                "a verdict for {request_id} stood but could not be read back"
            ))),
        }
    }

    /// The verdict stored for `request_id` and its sequence, if any (the
    /// first message on its subject: the only one under conditional
    /// publishing). Decoded here: the gateway's own log, read back.
    pub async fn stored_verdict(
        &self,
        request_id: &str,
    ) -> Result<Option<(ApprovalResolved, u64)>, NatsError> {
        let Some(message) = first_message(&self.stream, &resolved_subject(request_id))
            .await
            .map_err(|e| self.config.error(e))?
        else {
            return Ok(None);
        };
        match InvalidationEvent::decode(&message.payload[..]) {
            Ok(InvalidationEvent {
                event: Some(Event::ApprovalResolved(stored)),
                ..
            }) => Ok(Some((stored, message.sequence))),
            _ => Err(self.config.error(format_args!(
                "the message at seq {} is not a verdict",
                message.sequence
            ))),
        }
    }

    /// Publishes a policy invalidation (no condition: each one counts).
    pub async fn publish_invalidation(
        &self,
        invalidated: &PolicyInvalidated,
    ) -> Result<u64, NatsError> {
        let (subject, payload) = stored_message(Event::PolicyInvalidated(invalidated.clone()));
        let ack = match self.js.publish(subject, payload.into()).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        ack.map(|ack| ack.sequence)
            .map_err(|e| self.config.error(e))
    }
}

/// What a conditional publish found.
enum Outcome {
    /// This publish stored the verdict, at this sequence.
    Stored(u64),
    /// A verdict stood on the id's subject already, at this sequence.
    Standing(ApprovalResolved, u64),
}

/// The answer to publishing `resolved` where `stored` stands: the same
/// decision stands (a repeat), or the other one (a conflict).
fn compare(
    stored: ApprovalResolved,
    seq: u64,
    resolved: &ApprovalResolved,
) -> Result<Published, VerdictConflict> {
    if stored.decision == resolved.decision {
        Ok(Published {
            seq,
            already_stood: true,
        })
    } else {
        Err(VerdictConflict::Decided {
            stored: Box::new(stored),
            seq,
        })
    }
}

/// The first message stored on `subject`, if any (the stream leader
/// answers, so it is never a stale replica's view).
pub(crate) async fn first_message(
    stream: &jetstream::stream::Stream,
    subject: &str,
) -> Result<Option<StreamMessage>, String> {
    match stream
        .raw_message_builder()
        .sequence(1)
        .next_by_subject(subject.to_owned())
        .send()
        .await
    {
        Ok(message) => Ok(Some(message)),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(format!("reading {subject}: {e}")),
    }
}
