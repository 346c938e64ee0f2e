//! wit-bindgen glue: the WIT exports onto the guest core. This file holds
//! the bindings, the instance's state (registry, stream decoder, the
//! scope's instant) and the host clock; `registry.rs` the `registry`
//! export; `ingest.rs` an ingest's totals and report; `convert.rs` the
//! type conversions; `plugin.rs` (feature
//! `plugin`) the async `sink` export and its timer.

mod convert;
mod ingest;
#[cfg(feature = "plugin")]
mod plugin;
mod registry;

use crate::frames::FrameDecoder;
use crate::registry::{Registry, TimeSource};
use core::cell::RefCell;

#[cfg(not(feature = "plugin"))]
wit_bindgen::generate!({
    path: "../wit",
    world: "approval-registry",
});

#[cfg(feature = "plugin")]
wit_bindgen::generate!({
    path: "../wit",
    world: "approval-plugin",
});

/// Tables are pre-sized for this many waiters at `configure` (capped by
/// `max-waiters`), so steady-state growth does not double them in place.
const PRESIZE_WAITERS: usize = 1024;

/// The host's monotonic clock import, read at most once per registry
/// access: one `with_registry` scope (an export call, or one chunk of an
/// async stream) is one instant. Every cached early verdict reads the clock,
/// so without this an `ingest-frames` call of 10,000 verdicts made 10,000
/// host calls (BENCHMARKS.md, "Levers tried").
struct HostClock;

impl TimeSource for HostClock {
    fn now_ns(&self) -> u64 {
        NOW.with(|now| {
            now.get().unwrap_or_else(|| {
                let t = assembly::approval::clock::now();
                now.set(Some(t));
                t
            })
        })
    }
}

thread_local! {
    static REGISTRY: RefCell<Registry<HostClock>> = RefCell::new(Registry::new(HostClock));
    static DECODER: RefCell<FrameDecoder> = RefCell::new(FrameDecoder::new());
    /// The instant of the current `with_registry` scope, once read.
    static NOW: core::cell::Cell<Option<u64>> = const { core::cell::Cell::new(None) };
}

/// Runs `f` on this instance's registry. Never called re-entrantly: the
/// component model forbids re-entering an instance, and no borrow is held
/// across an `.await`.
fn with_registry<R>(f: impl FnOnce(&mut Registry<HostClock>) -> R) -> R {
    let out = REGISTRY.with(|r| f(&mut r.borrow_mut()));
    // The next scope (a later call, or this task after an `.await`) reads the
    // clock afresh.
    NOW.with(|now| now.set(None));
    out
}

struct Component;

export!(Component);
