//! The async face: one component task per wait, and one timer for all
//! of them.
//!
//! # The timer
//!
//! One `timer.sleep-until` call at a time serves every async wait of
//! the instance (one per wait would make a 100k storm 100k host
//! sleeps). The timer runs inside one wait's task, its
//! *owner*, alongside that wait: it sleeps until the registry's
//! earliest deadline, expires what is due (each expired async wait
//! gets its outcome on its oneshot, batched ones are reported by the
//! next `registry` call), and sleeps again. A registration with an
//! earlier deadline wakes it to re-arm. When the owner's own wait ends,
//! it hands the timer to one waiting task (they stand by with their
//! wakers), so no task outlives its wait and no sleep is left behind
//! for a wait that finished. Owner and standby are released on drop,
//! so a task cancelled by its host hands over too.

use super::assembly::approval::types::{Outcome, SinkError};
use super::exports::assembly::approval::sink::Guest as SinkGuest;
use super::ingest::IngestTotals;
use super::{Component, with_registry};
use crate::frames::{self, FrameDecoder};
use crate::registry::{Registered, Reply};
use alloc::collections::BTreeMap;
use core::cell::RefCell;
use core::task::{Poll, Waker};
use futures::channel::oneshot;
use futures::future::{self, Either};
use wit_bindgen::{StreamReader, StreamResult};

/// Bytes asked for per stream read.
const READ_CHUNK: usize = 64 * 1024;

/// The instance's one async timer.
#[derive(Default)]
struct Timer {
    /// A wait's task runs the timer now.
    owned: bool,
    /// The deadline the owner sleeps until.
    armed: Option<u64>,
    /// An earlier deadline was registered: the owner must re-arm.
    rearm: bool,
    /// Wakes the owner for `rearm`.
    owner: Option<Waker>,
    /// Waits that can take the timer over, by ticket.
    standby: BTreeMap<u64, Waker>,
}

thread_local! {
    static TIMER: RefCell<Timer> = RefCell::new(Timer::default());
}

fn with_timer<R>(f: impl FnOnce(&mut Timer) -> R) -> R {
    TIMER.with(|t| f(&mut t.borrow_mut()))
}

/// A new async wait's deadline: wakes the owner if it must wake sooner.
fn note_deadline(deadline: u64) {
    let owner = with_timer(|t| {
        if t.owned && t.armed.is_none_or(|armed| deadline < armed) {
            t.rearm = true;
            t.owner.take()
        } else {
            None
        }
    });
    if let Some(w) = owner {
        w.wake();
    }
}

/// Holds the timer; hands it to a standby wait when dropped.
struct Owner;

impl Drop for Owner {
    fn drop(&mut self) {
        let next = with_timer(|t| {
            t.owned = false;
            t.armed = None;
            t.rearm = false;
            t.owner = None;
            t.standby.pop_first().map(|(_, w)| w)
        });
        if let Some(w) = next {
            w.wake();
        }
    }
}

/// A wait standing by for the timer; leaves the standby list on drop.
struct Standby(u64);

impl Standby {
    /// Ready (as the owner) once the timer is free.
    async fn claim(&self) -> Owner {
        let ticket = self.0;
        future::poll_fn(|cx| {
            with_timer(|t| {
                if t.owned {
                    t.standby.insert(ticket, cx.waker().clone());
                    Poll::Pending
                } else {
                    t.owned = true;
                    t.standby.remove(&ticket);
                    Poll::Ready(())
                }
            })
        })
        .await;
        Owner
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        with_timer(|t| t.standby.remove(&self.0));
    }
}

/// Ready when a registration asked the owner to re-arm.
async fn rearm_requested() {
    future::poll_fn(|cx| {
        with_timer(|t| {
            if core::mem::take(&mut t.rearm) {
                Poll::Ready(())
            } else {
                t.owner = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    })
    .await
}

/// The owner's timer loop. Returns once the owner's own waiter is no
/// longer pending (its outcome is then on its oneshot), so an owner
/// that timed out hands over without starting another sleep.
async fn run_timer(own: u64) {
    loop {
        let Some(next) = with_registry(|r| r.deadline_of(own).map(|_| r.next_deadline())) else {
            return;
        };
        with_timer(|t| t.armed = next);
        match next {
            None => rearm_requested().await,
            Some(deadline) => {
                let sleep =
                    core::pin::pin!(super::assembly::approval::timer::sleep_until(deadline));
                let rearm = core::pin::pin!(rearm_requested());
                if let Either::Left(((), _)) = future::select(sleep, rearm).await {
                    with_registry(|r| r.expire());
                }
            }
        }
    }
}

impl SinkGuest for Component {
    async fn wait_for_approval(
        waiter: u64,
        request_id: String,
        timeout_ns: u64,
    ) -> Result<Outcome, SinkError> {
        let (tx, rx) = oneshot::channel();
        let registered =
            with_registry(|r| r.register(waiter, &request_id, timeout_ns, Reply::Async(tx)))?;
        if let Registered::Settled(outcome) = registered {
            return Ok(outcome.into());
        }
        if let Some(deadline) = with_registry(|r| r.deadline_of(waiter)) {
            note_deadline(deadline);
        }
        let standby = Standby(waiter);
        let claim = core::pin::pin!(standby.claim());
        let outcome = match future::select(rx, claim).await {
            // A verdict, a cancel by ticket or a timeout (the registry
            // dropping the sender means cancelled).
            Either::Left((outcome, _)) => outcome,
            Either::Right((owner, rx)) => {
                // This task runs the timer until its own wait ends;
                // dropping `owner` then hands the timer over.
                let timer = core::pin::pin!(run_timer(waiter));
                match future::select(rx, timer).await {
                    Either::Left((outcome, _)) => {
                        drop(owner);
                        outcome
                    }
                    Either::Right(((), rx)) => {
                        // Not pending any more: hand over, then read
                        // the outcome already sent.
                        drop(owner);
                        rx.await
                    }
                }
            }
        };
        Ok(outcome.map_or(Outcome::Cancelled, Into::into))
    }

    async fn ingest(mut frames: StreamReader<u8>) -> Result<u64, SinkError> {
        // A stream has its own decoder: its frames never interleave with
        // those fed through `ingest-frames`.
        let mut decoder = FrameDecoder::new();
        let mut totals = IngestTotals::default();
        let mut buf = Vec::with_capacity(READ_CHUNK);
        loop {
            let (status, data) = frames.read(buf).await;
            totals.feed(&mut decoder, &data).map_err(SinkError::from)?;
            // The journal is for a host that replaces failed instances
            // through the batched face; an async stream reports none,
            // so it must not pile up here.
            drop(with_registry(|r| r.take_journal()));
            buf = data;
            buf.clear();
            match status {
                StreamResult::Complete(_) => {}
                StreamResult::Dropped | StreamResult::Cancelled => break,
            }
        }
        if with_registry(|r| frames::end_stream(r, &mut decoder)) > 0 {
            return Err(SinkError::MalformedFrame(
                "stream ended inside a frame".into(),
            ));
        }
        Ok(u64::from(totals.events()))
    }
}
