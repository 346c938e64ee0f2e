//! The approval-sink guest: the waiter registry as a WebAssembly component.
//!
//! [`registry`] is the pure core and [`frames`] decodes the gateway's protobuf
//! frames; both compile natively and are tested with plain `cargo test`. The
//! rest of this file is wit-bindgen glue, compiled only for wasm32: the
//! batched `registry` export always, and with the `plugin` feature also the
//! async `sink` export and the `timer` import (world `approval-plugin`).
//!
//! The glue keeps one registry per instance in a `thread_local` (a component
//! instance is single-threaded) and never holds its borrow across an
//! `.await`, so async waits, verdicts and expiries interleave freely.

#![warn(missing_docs)]
// Guest code must not panic on any input (a panic is a trap): no unwraps.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

extern crate alloc;

pub mod frames;
pub mod registry;

#[cfg(target_arch = "wasm32")]
mod glue;
