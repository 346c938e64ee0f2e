//! [`GatewayLog`]: the single-node gateway's sequenced log (SPEC.md §9.1):
//! durable in SQLite by default ([`GatewayLog::open`]), or in memory
//! ([`GatewayLog::in_memory`]); its identity (S16), its replay retention,
//! the record of first verdicts (finality), and the subscriber bound.
//!
//! # Invariants
//!
//! * Sequence numbers start at 1 and increase by one per published event;
//!   every event carries the log's random id (1..=2^63-1), stored with the
//!   log, so a restarted gateway on the same directory is the same log.
//! * [`GatewayLog::publish`] returns only once the event is committed by
//!   the writer thread (`writer.rs`); only then do subscribers get it.
//! * Retention is bounded by count and bytes; dropped events are counted.
//!   The verdict record is apart from it ([`LogLimits::max_verdicts`],
//!   [`LogLimits::verdict_ttl`]).
//! * At most `max_subscribers` subscriptions hold a [`SubscriberSlot`].

//!
//! Its bounds, stats and refusals are `limits.rs`'s; the state it shares
//! with the writer thread (retention, live feed, counters) is `feed.rs`'s.

#[cfg(test)]
mod tests;

use crate::feed::{Follow, Shared, SubscriberSlot};
use crate::limits::{LogLimits, LogStats, PublishError};
use crate::store::{Store, StoreError};
use crate::writer::{Clock, Queued, Request, Writer};
use approval_proto::{Event, InvalidationEvent};
use prost::Message;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use tokio::sync::{Semaphore, oneshot};

/// Publications and lookups waiting for the writer at once; more wait for
/// a place (backpressure instead of an unbounded queue).
const QUEUED_REQUESTS: usize = 16_384;

/// The gateway's sequenced log; shared by every server instance that
/// serves it (a restarted server keeps the log). Dropping the last handle
/// stops its writer and releases its directory.
pub struct GatewayLog {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Queued>,
    queued: Arc<Semaphore>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for GatewayLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayLog")
            .field("log_id", &self.shared.log_id())
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The system clock in Unix milliseconds.
fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl GatewayLog {
    /// The durable log in `dir` (created, mode 0700, when missing; refused
    /// while another gateway holds it): the same log, with the same id,
    /// every time it is opened.
    pub fn open(dir: &Path, limits: LogLimits) -> Result<Arc<Self>, StoreError> {
        limits.check()?;
        let store = Store::open(dir, system_ms())?;
        Self::start(store, limits, Some(dir.to_owned()), Arc::new(system_ms))
    }

    /// A log in memory only: lost when the last handle is dropped (tests,
    /// benches, the demo; `gateway --in-memory`).
    pub fn in_memory(limits: LogLimits) -> Result<Arc<Self>, StoreError> {
        limits.check()?;
        Self::start(
            Store::in_memory(system_ms())?,
            limits,
            None,
            Arc::new(system_ms),
        )
    }

    /// [`open`](Self::open) or [`in_memory`](Self::in_memory) on a clock of
    /// the tests' choosing (Unix milliseconds), so expiry can be tested.
    #[cfg(test)]
    pub(crate) fn with_clock(
        dir: Option<&Path>,
        limits: LogLimits,
        clock: Clock,
    ) -> Result<Arc<Self>, StoreError> {
        let store = match dir {
            Some(dir) => Store::open(dir, clock())?,
            None => Store::in_memory(clock())?,
        };
        Self::start(store, limits, dir.map(Path::to_owned), clock)
    }

    fn start(
        store: Store,
        limits: LogLimits,
        dir: Option<PathBuf>,
        clock: Clock,
    ) -> Result<Arc<Self>, StoreError> {
        let loaded = store.load()?;
        let shared = Arc::new(Shared::new(
            loaded.log_id,
            limits,
            loaded.last_seq,
            loaded.verdicts,
        ));
        let mut retained = Vec::with_capacity(loaded.events.len());
        for (seq, body) in loaded.events {
            match InvalidationEvent::decode(&body[..]) {
                Ok(event) if event.seq == seq => retained.push((Arc::new(event), body.len())),
                // The gateway's own rows: a damaged one is reported, never
                // a reason to refuse the log. Replay starts after it, so the
                // retained seqs stay consecutive (a resume point is found by
                // position) and a subscriber from before it is told events
                // were lost.
                damaged => {
                    let why = damaged.map_or_else(|e| e.to_string(), |_| "wrong seq".into());
                    tracing::error!(seq, error = %why, "a stored event is damaged; replay starts after it");
                    retained.clear();
                }
            }
        }
        shared.committed(retained);
        // The stored last seq, not the last retained: numbering goes on
        // after every seq ever used, damaged rows included.
        shared.loaded(loaded.last_seq);
        let (requests, received) = mpsc::channel::<Queued>();
        let writer = Writer {
            store,
            shared: Arc::clone(&shared),
            clock,
            max_verdicts: limits.max_verdicts,
            verdict_ttl_ms: i64::try_from(limits.verdict_ttl.as_millis()).unwrap_or(i64::MAX),
            verdicts: loaded.verdicts,
            last_sweep_ms: i64::MIN,
        };
        let thread = std::thread::Builder::new()
            .name("gateway-log-writer".into())
            .spawn(move || writer.run(received))
            .map_err(|source| StoreError::Io {
                path: dir.clone().unwrap_or_default(),
                source,
            })?;
        Ok(Arc::new(GatewayLog {
            shared,
            requests,
            queued: Arc::new(Semaphore::new(QUEUED_REQUESTS)),
            writer: Mutex::new(Some(thread)),
            dir,
        }))
    }

    /// Sends `request` to the writer (waiting for a place in its queue)
    /// and waits for the answer.
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, StoreError> {
        // The place goes with the request and is freed when the writer is
        // done with it, not when this caller stops waiting: a client that
        // cancels its calls cannot queue more than the bound.
        let place = Arc::clone(&self.queued)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((request(reply), Some(place)))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)
    }

    /// Publishes `event` with the next sequence number and returns it, once
    /// it is committed. A verdict is subject to finality: the same decision
    /// again answers with the standing one's seq, the other one is refused
    /// ([`PublishError::AlreadyDecided`]), as is a new one while the record
    /// is full ([`PublishError::Full`]).
    pub async fn publish(&self, event: Event) -> Result<u64, PublishError> {
        let answer = self
            .ask(|reply| Request::Publish { event, reply })
            .await
            .map_err(|e| PublishError::Store(e.to_string()))?;
        match &answer {
            Err(PublishError::AlreadyDecided { .. }) => self.shared.count_conflict(),
            Err(PublishError::Full { .. }) => self.shared.count_refused_verdict(),
            _ => {}
        }
        answer
    }

    /// The recorded verdicts of `ids` (at most [`MAX_LOOKUP_IDS`]), each as
    /// the event that published it; ids with none are left out.
    pub async fn lookup(&self, ids: Vec<String>) -> Result<Vec<InvalidationEvent>, StoreError> {
        let bodies = self.ask(|reply| Request::Lookup { ids, reply }).await??;
        Ok(bodies
            .iter()
            .filter_map(|body| InvalidationEvent::decode(&body[..]).ok())
            .collect())
    }

    /// The newest sequence number published.
    pub fn last_seq(&self) -> u64 {
        self.shared.positions().0
    }

    /// This log's identity (random, non-zero, kept with a durable log).
    pub fn log_id(&self) -> u64 {
        self.shared.log_id()
    }

    /// The data directory of a durable log; `None` in memory.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// What the log holds and has refused or dropped.
    pub fn stats(&self) -> LogStats {
        self.shared.stats()
    }

    /// Takes a subscriber slot; `None` (counted) when all are taken.
    pub(crate) fn admit(&self) -> Option<SubscriberSlot> {
        self.shared.admit()
    }

    /// Where a subscriber of `(log_id, last_seq)` starts in this log, the
    /// retained events after that, and a live feed of the rest.
    pub(crate) fn follow(&self, last_seq: u64, log_id: u64) -> Follow {
        self.shared.follow(last_seq, log_id)
    }
}

impl Drop for GatewayLog {
    /// Stops the writer after what it was asked before, and waits for it,
    /// so the directory's lock is free once the log is gone.
    fn drop(&mut self) {
        let _ = self.requests.send((Request::Close, None));
        let thread = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}
