//! [`GatewayLog`]: the development gateway's sequenced, bounded event log
//! with its identity (S16), and the subscriber bound.
//!
//! # Invariants
//!
//! * Sequence numbers start at 1 and increase by one per published event;
//!   every event carries the log's random, non-zero id.
//! * Retention is bounded by count and bytes; dropped events are counted.
//! * At most `max_subscribers` subscriptions hold a [`SubscriberSlot`].

use approval_proto::{Event, InvalidationEvent};
use prost::Message;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;

/// Live events buffered per subscriber before it counts as lagging.
const LIVE_BUFFER: usize = 4096;

/// Bounds of a [`GatewayLog`] (each clamped to at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Most events kept for replay. Default 100,000.
    pub retention: usize,
    /// Most encoded bytes kept for replay; the oldest events go first.
    /// Default 256 MiB.
    pub retain_bytes: usize,
    /// Most open subscriptions; more are refused with `RESOURCE_EXHAUSTED`.
    /// Default 10,000.
    pub max_subscribers: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            retention: 100_000,
            retain_bytes: 256 << 20,
            max_subscribers: 10_000,
        }
    }
}

/// What a [`GatewayLog`] holds and has refused or dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// The newest sequence number published.
    pub last_seq: u64,
    /// Events retained for replay.
    pub retained: usize,
    /// Their encoded size.
    pub retained_bytes: usize,
    /// Events dropped from retention (count or bytes bound).
    pub dropped: u64,
    /// Subscriptions open now.
    pub subscribers: usize,
    /// Subscriptions refused (over `max_subscribers`).
    pub refused_subscribers: u64,
}

/// The gateway's sequenced event log; shared by every server instance that
/// serves it (a restarted server keeps the log).
pub struct GatewayLog {
    id: u64,
    limits: LogLimits,
    state: Mutex<LogState>,
    live: broadcast::Sender<Arc<InvalidationEvent>>,
    subscribers: AtomicUsize,
    refused: AtomicU64,
}

struct LogState {
    /// Retained events with their encoded size, oldest first; their seqs
    /// are consecutive, so a resume point is an index.
    events: VecDeque<(Arc<InvalidationEvent>, usize)>,
    bytes: usize,
    last_seq: u64,
    dropped: u64,
}

impl GatewayLog {
    /// A log keeping the latest `retention` events for replay (other
    /// limits at their defaults).
    pub fn new(retention: usize) -> Arc<Self> {
        Self::with_limits(LogLimits {
            retention,
            ..LogLimits::default()
        })
    }

    /// A log with these bounds.
    pub fn with_limits(limits: LogLimits) -> Arc<Self> {
        let limits = LogLimits {
            retention: limits.retention.max(1),
            retain_bytes: limits.retain_bytes.max(1),
            max_subscribers: limits.max_subscribers.max(1),
        };
        Arc::new(GatewayLog {
            // Drawn from 1..: never 0, which means "unknown log".
            id: fastrand::u64(1..),
            limits,
            state: Mutex::new(LogState {
                events: VecDeque::new(),
                bytes: 0,
                last_seq: 0,
                dropped: 0,
            }),
            live: broadcast::channel(LIVE_BUFFER).0,
            subscribers: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an event with the next sequence number and sends it to live
    /// subscribers; returns the number. The oldest events leave retention
    /// past its count or byte bound (counted in `LogStats::dropped`).
    pub fn publish(&self, event: Event) -> u64 {
        let mut state = self.lock();
        state.last_seq += 1;
        let event = Arc::new(InvalidationEvent {
            seq: state.last_seq,
            event: Some(event),
            log_id: self.id,
        });
        let size = event.encoded_len();
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
        state.last_seq
    }

    /// The newest sequence number published.
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// This log's identity (random, non-zero).
    pub fn log_id(&self) -> u64 {
        self.id
    }

    /// What the log holds and has refused or dropped.
    pub fn stats(&self) -> LogStats {
        let state = self.lock();
        LogStats {
            last_seq: state.last_seq,
            retained: state.events.len(),
            retained_bytes: state.bytes,
            dropped: state.dropped,
            subscribers: self.subscribers.load(Ordering::Relaxed),
            refused_subscribers: self.refused.load(Ordering::Relaxed),
        }
    }

    /// Takes a subscriber slot; `None` (counted) when all are taken.
    pub(super) fn admit(self: &Arc<Self>) -> Option<SubscriberSlot> {
        // Never counts past the bound, not even for a moment.
        let max = self.limits.max_subscribers;
        let admitted = self
            .subscribers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(SubscriberSlot(Arc::clone(self)))
    }

    /// Where a subscriber of `(log_id, last_seq)` starts in this log (0 if
    /// `log_id` names another log), the retained events after that, and a
    /// live feed of the rest. Under the lock this only clones `Arc`s of the
    /// events after the resume point (found by index: seqs are
    /// consecutive), so a subscribe never copies the backlog's bytes while
    /// publishers wait.
    pub(super) fn follow(
        &self,
        last_seq: u64,
        log_id: u64,
    ) -> (
        u64,
        Vec<Arc<InvalidationEvent>>,
        broadcast::Receiver<Arc<InvalidationEvent>>,
    ) {
        let last_seq = if log_id != 0 && log_id != self.id {
            tracing::info!(
                theirs = log_id,
                ours = self.id,
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
pub(super) struct SubscriberSlot(Arc<GatewayLog>);

impl Drop for SubscriberSlot {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}
