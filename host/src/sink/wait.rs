//! [`Wait`]: the future of one registered wait. It only watches its host
//! slot; completions fill the slot and wake it. Dropping it before it
//! completes frees the slot and cancels the waiter in the guest (S7).
//! [`WaitForApproval`] is the original API's face of it: a plain `Decision`.

use super::core::Core;
use crate::error::WaitError;
use crate::outcome::Outcome;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A registered wait; resolves to how it ended. Dropping it before it
/// completes cancels the waiter in the guest (S7).
///
/// # Panics
///
/// Polling it again after it returned `Ready` panics, as for `async fn`
/// futures (wrap it in `futures::FutureExt::fuse` to poll it blindly).
#[must_use = "a wait is cancelled when dropped"]
pub struct Wait {
    core: Arc<Core>,
    state: WaitState,
}

enum WaitState {
    /// The guest holds the waiter; the host slot has this ticket.
    Registered(u64),
    /// Settled when it was registered (an early verdict, or an error).
    Settled(Result<Outcome, WaitError>),
    /// The outcome was returned.
    Done,
}

impl Wait {
    /// A wait the guest holds under `ticket`.
    pub(super) fn registered(core: Arc<Core>, ticket: u64) -> Self {
        Wait {
            core,
            state: WaitState::Registered(ticket),
        }
    }

    /// A wait that settled at registration.
    pub(super) fn settled(core: Arc<Core>, result: Result<Outcome, WaitError>) -> Self {
        Wait {
            core,
            state: WaitState::Settled(result),
        }
    }
}

impl Future for Wait {
    type Output = Result<Outcome, WaitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match std::mem::replace(&mut self.state, WaitState::Done) {
            WaitState::Settled(result) => Poll::Ready(result),
            WaitState::Registered(ticket) => {
                // The wait may still be queued (and be settled at once by
                // the guest): the core has the timer task send the queue.
                match self.core.poll_wait(ticket, cx) {
                    Some(outcome) => Poll::Ready(outcome),
                    None => {
                        self.state = WaitState::Registered(ticket);
                        Poll::Pending
                    }
                }
            }
            WaitState::Done => panic!("approval-sink `Wait` polled after completion"),
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        let WaitState::Registered(ticket) = self.state else {
            return;
        };
        // Queued, like a registration: no guest call of its own.
        self.core.cancel_wait(ticket);
    }
}

/// The future of [`ApprovalSink::wait_for_approval`](super::ApprovalSink::wait_for_approval):
/// the verdict, or `Decision::Pending` for every way of ending without one
/// (timeout, reset, a refused request, logged). `Send + 'static`; dropping it
/// cancels the waiter (S7).
#[must_use = "a wait is cancelled when dropped"]
pub struct WaitForApproval {
    wait: Wait,
}

impl WaitForApproval {
    pub(super) fn new(wait: Wait) -> Self {
        WaitForApproval { wait }
    }
}

impl Future for WaitForApproval {
    type Output = crate::outcome::Decision;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.wait)
            .poll(cx)
            .map(|result| match result {
                Ok(outcome) => outcome.decision(),
                Err(e) => {
                    tracing::warn!(error = %e, "wait failed; falling back to Pending");
                    crate::outcome::Decision::Pending
                }
            })
    }
}
