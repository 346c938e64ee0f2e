//! What the writer thread and the services share: the replay retention,
//! the live feed, the counters and the subscriber bound.

use crate::limits::{LogLimits, LogStats};
use approval_proto::InvalidationEvent;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;

/// Where a subscriber starts (its resume point in this log), the retained
/// events after it, and the live feed of the rest.
pub(crate) type Follow = (
    u64,
    Vec<Arc<InvalidationEvent>>,
    broadcast::Receiver<Arc<InvalidationEvent>>,
);

/// Live events buffered per subscriber before it counts as lagging.
const LIVE_BUFFER: usize = 4096;

/// What the writer thread and the services share: the replay retention,
/// the live feed and the counters.
pub(crate) struct Shared {
    id: u64,
    limits: LogLimits,
    state: Mutex<LogState>,
    live: broadcast::Sender<Arc<InvalidationEvent>>,
    subscribers: AtomicUsize,
    refused_subscribers: AtomicU64,
    verdicts: AtomicU64,
    conflicts: AtomicU64,
    refused_verdicts: AtomicU64,
    commits: AtomicU64,
}

struct LogState {
    /// Retained events with their encoded size, oldest first; their seqs
    /// are consecutive, so a resume point is an index.
    events: VecDeque<(Arc<InvalidationEvent>, usize)>,
    bytes: usize,
    last_seq: u64,
    dropped: u64,
}

impl Shared {
    /// The shared side of a log `id` opened at `last_seq` with `verdicts`
    /// recorded (retention empty until [`committed`](Self::committed)).
    pub(crate) fn new(id: u64, limits: LogLimits, last_seq: u64, verdicts: u64) -> Self {
        Shared {
            id,
            limits,
            state: Mutex::new(LogState {
                events: VecDeque::new(),
                bytes: 0,
                last_seq,
                dropped: 0,
            }),
            live: broadcast::channel(LIVE_BUFFER).0,
            subscribers: AtomicUsize::new(0),
            refused_subscribers: AtomicU64::new(0),
            verdicts: AtomicU64::new(verdicts),
            conflicts: AtomicU64::new(0),
            refused_verdicts: AtomicU64::new(0),
            commits: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn log_id(&self) -> u64 {
        self.id
    }

    /// The last seq published and the oldest retained (what the store may
    /// trim below).
    pub(crate) fn positions(&self) -> (u64, u64) {
        let state = self.lock();
        let oldest = state
            .events
            .front()
            .map_or(state.last_seq + 1, |(e, _)| e.seq);
        (state.last_seq, oldest)
    }

    /// After a commit: the verdict records the store holds now.
    pub(crate) fn set_verdicts(&self, verdicts: u64) {
        self.verdicts.store(verdicts, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a verdict refused because the other decision stands.
    pub(crate) fn count_conflict(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a verdict refused because the record is full.
    pub(crate) fn count_refused_verdict(&self) {
        self.refused_verdicts.fetch_add(1, Ordering::Relaxed);
    }

    /// After loading the store into retention: the stored `last_seq` (the
    /// next event gets the one after it, whatever was retained), and only
    /// what the log drops from now on counts.
    pub(crate) fn loaded(&self, last_seq: u64) {
        let mut state = self.lock();
        state.last_seq = last_seq;
        state.dropped = 0;
    }

    /// What the log holds and has refused or dropped.
    pub(crate) fn stats(&self) -> LogStats {
        let state = self.lock();
        LogStats {
            last_seq: state.last_seq,
            retained: state.events.len(),
            retained_bytes: state.bytes,
            dropped: state.dropped,
            verdicts: self.verdicts.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            refused_verdicts: self.refused_verdicts.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            subscribers: self.subscribers.load(Ordering::Relaxed),
            refused_subscribers: self.refused_subscribers.load(Ordering::Relaxed),
        }
    }

    /// Takes committed events into retention and sends them to live
    /// subscribers, under the lock `follow` takes.
    pub(crate) fn committed(&self, events: Vec<(Arc<InvalidationEvent>, usize)>) {
        let mut state = self.lock();
        for (event, size) in events {
            state.last_seq = event.seq;
            state.events.push_back((Arc::clone(&event), size));
            state.bytes = state.bytes.saturating_add(size);
            while state.events.len() > self.limits.retention
                || (state.bytes > self.limits.retain_bytes && state.events.len() > 1)
            {
                let Some((_, size)) = state.events.pop_front() else {
                    break;
                };
                state.bytes = state.bytes.saturating_sub(size);
                state.dropped += 1;
            }
            // No live subscriber is fine: the log keeps it for replay.
            let _ = self.live.send(event);
        }
    }

    /// Takes a subscriber slot; `None` (counted) when all are taken.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<SubscriberSlot> {
        // Never counts past the bound, not even for a moment.
        let max = self.limits.max_subscribers;
        let admitted = self
            .subscribers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            self.refused_subscribers.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(SubscriberSlot(Arc::clone(self)))
    }

    /// Where a subscriber of `(log_id, last_seq)` starts in this log (0 if
    /// `log_id` names another log), the retained events after that, and a
    /// live feed of the rest. Under the lock this only clones `Arc`s of the
    /// events after the resume point (found by index: seqs are
    /// consecutive), so a subscribe never copies the backlog's bytes while
    /// the writer waits.
    pub(crate) fn follow(&self, last_seq: u64, log_id: u64) -> Follow {
        let ours = self.id;
        let last_seq = if log_id != 0 && log_id != ours {
            tracing::info!(
                theirs = log_id,
                ours,
                "subscriber resumes another log; replaying from the start"
            );
            0
        } else {
            last_seq
        };
        let state = self.lock();
        let live = self.live.subscribe();
        let oldest = state
            .events
            .front()
            .map_or(state.last_seq + 1, |(e, _)| e.seq);
        if oldest > last_seq.saturating_add(1) {
            tracing::warn!(
                last_seq,
                oldest,
                "subscriber resumes before retention; events were lost"
            );
        }
        let skip = usize::try_from(last_seq.saturating_add(1).saturating_sub(oldest))
            .unwrap_or(usize::MAX);
        let backlog = state
            .events
            .iter()
            .skip(skip)
            .map(|(e, _)| Arc::clone(e))
            .collect();
        (last_seq, backlog, live)
    }
}

/// An open subscription's place in `max_subscribers`; freed when dropped.
pub(crate) struct SubscriberSlot(Arc<Shared>);

impl Drop for SubscriberSlot {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}
