//! New waits, offered to whoever watches them: a bounded channel from the
//! sink's core to a pump whose source can look verdicts up (durable waits,
//! `sources/lookups.rs`). The sink offers a wait once its registration has
//! reached the guest and is still pending, so waits stay batched: the core
//! offers them after each flush instead of flushing per wait.
//!
//! # Invariants
//!
//! * At most one watcher: watching again replaces the previous one, whose
//!   channel then ends.
//! * Bounded: at most [`QUEUED_LOOKUPS`] offered waits wait for the
//!   watcher; more are skipped and counted (a skipped lookup loses nothing
//!   published from then on: the stream still delivers it).
//! * Once the watcher is gone, the core stops keeping ids for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Offered waits that may wait for the watcher; more are skipped.
pub(crate) const QUEUED_LOOKUPS: usize = 100_000;

/// A wait that is pending in the guest now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewWait {
    /// Its request id.
    pub(crate) request_id: String,
    /// Its timeout (a lookup need not outlive it).
    pub(crate) timeout: Duration,
}

/// The watcher's end.
pub(crate) struct NewWaits {
    rx: mpsc::Receiver<NewWait>,
    skipped: Arc<AtomicU64>,
}

/// The core's end.
#[derive(Debug)]
pub(super) struct Offer {
    tx: mpsc::Sender<NewWait>,
    skipped: Arc<AtomicU64>,
}

/// A new channel: the core's end and the watcher's.
pub(super) fn channel() -> (Offer, NewWaits) {
    let (tx, rx) = mpsc::channel(QUEUED_LOOKUPS);
    let skipped = Arc::new(AtomicU64::new(0));
    (
        Offer {
            tx,
            skipped: Arc::clone(&skipped),
        },
        NewWaits { rx, skipped },
    )
}

impl Offer {
    /// Offers `wait`; `false` once the watcher is gone.
    pub(super) fn offer(&self, wait: NewWait) -> bool {
        match self.tx.try_send(wait) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// The watcher is gone.
    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl NewWaits {
    /// The next new wait; `None` once the sink is gone or another watcher
    /// replaced this one.
    pub(crate) async fn recv(&mut self) -> Option<NewWait> {
        self.rx.recv().await
    }

    /// The count of waits skipped because this watcher fell behind.
    pub(crate) fn skipped(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn offers_reach_the_watcher_until_it_goes() {
        let (offer, mut waits) = channel();
        let wait = NewWait {
            request_id: "req-1".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(offer.offer(wait.clone()));
        assert_eq!(waits.recv().await, Some(wait.clone()));
        drop(waits);
        assert!(offer.is_closed());
        assert!(!offer.offer(wait), "the watcher is gone");
    }
}
