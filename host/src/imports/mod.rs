//! The host side of the guest's imports, one file per WIT interface, and the
//! per-store state they read.

mod clock;
mod host_events;

use crate::clock::Clock;
use std::sync::Arc;
use tokio::sync::broadcast;
use wasmtime::StoreLimits;

/// The `T` of the adapter's `Store<T>`: what the imports need.
pub struct StoreState {
    /// Time for `clock.now`.
    pub clock: Arc<dyn Clock>,
    /// Fan-out of `host-events.policy-invalidated` to host listeners (S10).
    pub invalidations: broadcast::Sender<String>,
    /// Memory and table caps of this store (S13).
    pub limits: StoreLimits,
}

/// `assembly:approval/types` has no functions; its `Host` trait is empty.
impl crate::bindings::assembly::approval::types::Host for StoreState {}
