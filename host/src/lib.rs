//! approval-host: the wasmtime host adapter of the approval-sink component.
//!
//! [`ApprovalSink`] embeds the `approval-registry` component (built from
//! `approval-guest` by this crate's `build.rs`) and exposes the original
//! sink's async Rust API on top of it (SPEC.md §2). This crate holds no
//! transport: the gateway's gRPC stream is `approval-grpc`, the NATS log
//! `approval-nats`, the development gateway `approval-gateway`. Module map:
//!
//! * [`sink`]: the public API, waiter futures, trap recovery, the timer task;
//! * `adapter`: owns the wasmtime `Store`, one plain call per export, and
//!   the only WIT-to-host type conversions;
//! * `bindings`: the `bindgen!` output (never public);
//! * [`component`]: engine, compile, link, `InstancePre`, embedded bytes;
//! * `imports`: the host side of the guest's `clock` and `host-events`;
//! * [`clock`]: [`SystemClock`] and [`ManualClock`];
//! * `slots`: generational waiter slots that completions fill;
//! * `config`, `stats`, `report`, `outcome`, `error`: the public value types;
//! * [`trust`]: reviewer keys: trusted public keys, signing, who decided (S17);
//! * [`inspect`]: what a component file is (world, imports, exports);
//! * [`sources`]: the event-source traits, the pump (with durable lookups)
//!   and [`ReaderSource`](sources::ReaderSource).
//!
//! The CLI lives in its own crate (`host/cli`), so a library user compiles
//! neither clap nor a transport it does not use.

#![warn(missing_docs)]
// Nothing the guest or the network controls may panic the host.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod adapter;
mod bindings;
pub mod clock;
pub mod component;
mod config;
mod error;
mod imports;
pub mod inspect;
mod outcome;
mod report;
pub mod sink;
mod slots;
pub mod sources;
mod stats;
pub mod trust;

#[cfg(test)]
mod defaults;
#[cfg(test)]
#[path = "../../tests/vectors/golden.rs"]
mod golden;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{MAX_CALL_BUDGET, MAX_CRASH_LOOP_BACKOFF, SinkConfig};
pub use error::{HostError, SinkError, WaitError};
pub use outcome::{Decision, Outcome, Verdict};
pub use report::{IngestReport, ResumePoint};
pub use sink::{ApprovalSink, ApprovalSinkBuilder, InvalidationSink, Wait, WaitForApproval};
pub use stats::Stats;
pub use trust::{DecidedBy, Resolution, ReviewerKey, TrustedKey};
