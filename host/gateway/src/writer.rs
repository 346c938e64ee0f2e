//! The log's writer: one thread that owns the [`Store`] and commits
//! publications in groups (SPEC.md §9.1).
//!
//! # Invariants
//!
//! * Every publication is answered only after the transaction holding it
//!   committed (on disk with a durable store), and reaches subscribers only
//!   then: a subscriber never sees an event a crash could take back.
//! * Requests that arrive while a transaction commits wait in the channel
//!   and go into the next one together, so under load one fsync serves
//!   many verdicts (group commit; at most [`MAX_BATCH`] a transaction).
//! * Finality: the first verdict per request id is recorded in the same
//!   transaction as its event; the other decision is refused while the
//!   record is younger than `verdict_ttl`, whatever the replay retention
//!   or any number of invalidations drop. A full record refuses new
//!   verdicts; it never forgets one to make room.
//! * A failed transaction publishes nothing: its requests get the error and
//!   the sequence numbers it would have used are used by the next one.

use crate::feed::Shared;
use crate::limits::PublishError;
use crate::store::{Batch, Record, Store, StoreError};
use approval_proto::{Event, InvalidationEvent};
use prost::Message;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

/// Most requests one transaction carries.
pub(crate) const MAX_BATCH: usize = 1024;

/// How often expired verdict records are swept (they are ignored as soon
/// as they expire; the sweep only frees their rows).
const SWEEP_EVERY_MS: i64 = 60_000;

/// The current time in Unix milliseconds; injectable for tests.
pub(crate) type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What the writer is asked to do.
pub(crate) enum Request {
    /// Publish an event (a verdict subject to finality).
    Publish { event: Event, reply: Reply },
    /// Read the verdict records of these ids.
    Lookup {
        ids: Vec<String>,
        reply: oneshot::Sender<Result<Vec<Vec<u8>>, StoreError>>,
    },
    /// Stop after the requests before this one.
    Close,
}

/// A request with its place in the log's queue bound, freed once the
/// writer has served it (`None` for [`Request::Close`]).
pub(crate) type Queued = (Request, Option<OwnedSemaphorePermit>);

/// The writer's own state.
pub(crate) struct Writer {
    pub(crate) store: Store,
    pub(crate) shared: Arc<Shared>,
    pub(crate) clock: Clock,
    pub(crate) max_verdicts: u64,
    pub(crate) verdict_ttl_ms: i64,
    /// Verdict records in the store (expired ones until swept).
    pub(crate) verdicts: u64,
    pub(crate) last_sweep_ms: i64,
}

/// Where a publication's answer goes.
type Reply = oneshot::Sender<Result<u64, PublishError>>;

/// A publication's answer, sent once its transaction committed.
type Answer = (Reply, Result<u64, PublishError>);

impl Writer {
    /// Serves requests until [`Request::Close`] or every sender is gone.
    pub(crate) fn run(mut self, requests: Receiver<Queued>) {
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match requests.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let closing = batch.iter().any(|(r, _)| matches!(r, Request::Close));
            let (batch, places): (Vec<Request>, Vec<_>) = batch.into_iter().unzip();
            self.serve(batch);
            // Only now may more requests queue.
            drop(places);
            if closing {
                break;
            }
        }
    }

    fn since(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(self.verdict_ttl_ms)
    }

    /// One group: publications in one transaction, then lookups.
    fn serve(&mut self, batch: Vec<Request>) {
        let now_ms = (self.clock)();
        let mut publications = Vec::new();
        let mut lookups = Vec::new();
        for request in batch {
            match request {
                Request::Publish { event, reply } => publications.push((event, reply)),
                Request::Lookup { ids, reply } => lookups.push((ids, reply)),
                Request::Close => {}
            }
        }
        if !publications.is_empty() {
            let verdicts = self.verdicts;
            match self.commit(publications, now_ms) {
                Ok((answers, events)) => {
                    self.shared.committed(events);
                    for (reply, answer) in answers {
                        let _ = reply.send(answer);
                    }
                }
                Err((replies, e)) => {
                    self.verdicts = verdicts;
                    tracing::error!(error = %e, "the log could not commit; nothing was published");
                    for reply in replies {
                        let _ = reply.send(Err(PublishError::Store(e.to_string())));
                    }
                }
            }
        }
        let since = self.since(now_ms);
        for (ids, reply) in lookups {
            let _ = reply.send(self.store.lookup(&ids, since));
        }
    }

    /// Writes every publication in one transaction and commits it. On an
    /// error, every reply comes back with it.
    #[allow(clippy::type_complexity)]
    fn commit(
        &mut self,
        publications: Vec<(Event, Reply)>,
        now_ms: i64,
    ) -> Result<(Vec<Answer>, Vec<(Arc<InvalidationEvent>, usize)>), (Vec<Reply>, StoreError)> {
        let since = self.since(now_ms);
        let (mut last_seq, oldest) = self.shared.positions();
        let log_id = self.shared.log_id();
        let sweep = now_ms.saturating_sub(self.last_sweep_ms) >= SWEEP_EVERY_MS;
        let (events, replies): (Vec<Event>, Vec<Reply>) = publications.into_iter().unzip();
        let mut answers = Vec::with_capacity(events.len());
        let mut published = Vec::new();
        let verdicts = &mut self.verdicts;
        let max = self.max_verdicts;
        let result = (|| {
            let tx = self.store.transaction()?;
            // What the memory side dropped from retention last time.
            tx.trim(oldest)?;
            if sweep {
                *verdicts = verdicts.saturating_sub(tx.expire(since)?);
            }
            for event in events {
                if let Some(answer) = refusal(&tx, &event, since, verdicts, max)? {
                    answers.push(answer);
                    continue;
                }
                last_seq += 1;
                let event = InvalidationEvent {
                    seq: last_seq,
                    event: Some(event),
                    log_id,
                };
                let body = event.encode_to_vec();
                tx.append(last_seq, &body)?;
                if let Some(Event::ApprovalResolved(resolved)) = &event.event {
                    let record = Record {
                        decision: resolved.decision,
                        key_id: resolved.key_id.clone(),
                        seq: last_seq,
                    };
                    let replaced =
                        tx.record_verdict(&resolved.request_id, record, now_ms, &body)?;
                    *verdicts = (*verdicts + 1).saturating_sub(replaced);
                }
                published.push((Arc::new(event), body.len()));
                answers.push(Ok(last_seq));
            }
            if !published.is_empty() {
                tx.set_last_seq(last_seq)?;
            }
            tx.commit()
        })();
        match result {
            Ok(()) => {
                if sweep {
                    self.last_sweep_ms = now_ms;
                }
                self.shared.set_verdicts(self.verdicts);
                Ok((replies.into_iter().zip(answers).collect(), published))
            }
            Err(e) => Err((replies, e)),
        }
    }
}

/// The answer to a verdict that must not be appended (the same one stands,
/// the other one stands, or the record is full), or `None` to append it.
fn refusal(
    tx: &Batch<'_>,
    event: &Event,
    since: i64,
    verdicts: &mut u64,
    max: u64,
) -> Result<Option<Result<u64, PublishError>>, StoreError> {
    let Event::ApprovalResolved(resolved) = event else {
        return Ok(None);
    };
    match tx.record(&resolved.request_id, since)? {
        // The same verdict: the same decision by the same key (or both
        // unsigned). A signed verdict after an unsigned or otherwise
        // signed one of the same decision is not "the same": sinks that
        // require that key never apply the standing one, so the reviewer
        // must not be told it stands.
        Some(stands)
            if stands.decision == resolved.decision && stands.key_id == resolved.key_id =>
        {
            Ok(Some(Ok(stands.seq)))
        }
        Some(stands) => Ok(Some(Err(PublishError::AlreadyDecided {
            decision: stands.decision,
            key_id: stands.key_id,
            seq: stands.seq,
        }))),
        None => {
            if *verdicts >= max {
                // Full: first free what has expired, never what has not.
                *verdicts = verdicts.saturating_sub(tx.expire(since)?);
            }
            Ok((*verdicts >= max).then_some(Err(PublishError::Full { max })))
        }
    }
}
