//! The approval-sink guest: the waiter registry as a WebAssembly component.
//!
//! Module map:
//!
//! * [`registry`]: the pure, clock-generic core (waiters, tickets, fan-out);
//! * [`deadlines`]: the deadline queue with lazy deletion;
//! * [`waiters`]: the pending waiters by ticket;
//! * [`ids`]: per request id, its waiters' tickets and its remembered verdict
//!   (the verdict memory of S4 and S15, bounded by capacity and TTL);
//! * [`journal`]: newly remembered verdicts as bytes, for the host to carry
//!   over a reset (S18);
//! * [`ops`]: the flat operation buffer of `registry.apply` (the host's
//!   queue of registrations and cancels, encoded and decoded);
//! * [`verdict`]: verdicts, outcomes, and their mapping to the wire `Decision`;
//! * [`config`]: limits and cache settings, with the one copy of each default;
//! * [`stats`]: the counters and the one list of their names;
//! * [`trust`]: trusted reviewer keys and signed verdicts (S17);
//! * [`window`]: the stream's `(log_id, last_seq)` and its duplicate rule;
//! * [`wire`]: a borrowed decode of `InvalidationEvent` (prost's answers, no
//!   allocation);
//! * [`frames`]: splits the gateway's stream into frames and applies them.
//!
//! All of these compile natively and are tested with plain `cargo test`
//! (the host crate uses `config`, `stats` and `verdict` natively too). The
//! wit-bindgen glue lives in `glue.rs`, compiled only for wasm32: the batched
//! `registry` export always, and with the `plugin` feature also the async
//! `sink` export and the `timer` import (world `approval-plugin`).

#![warn(missing_docs)]
// Guest code must not panic on any input (a panic is a trap): no unwraps.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

extern crate alloc;

pub mod config;
pub mod deadlines;
pub mod frames;
pub mod ids;
pub mod journal;
pub mod ops;
pub mod registry;
pub mod stats;
pub mod trust;
pub mod verdict;
pub mod waiters;
pub mod window;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod glue;
