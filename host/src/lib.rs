//! approval-host: the wasmtime host adapter of the approval-sink component.
//!
//! [`ApprovalSink`] embeds the `approval-registry` component (built from
//! `approval-guest` by this crate's `build.rs`) and exposes the original
//! sink's async Rust API on top of it. Module map:
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
//! * [`sources`]: event sources (gRPC, any `AsyncRead`) and the pump;
//! * [`gateway`] (feature `gateway`): a development gateway (tonic server)
//!   for the CLI and tests;
//! * [`nats`] (feature `nats`): NATS JetStream as the shared log of many
//!   machines: subjects, log id, conditional publishing of verdicts.
//!
//! The CLI lives in its own crate (`host/cli`), so a library user compiles
//! neither clap nor the gateway.

#![warn(missing_docs)]
// Nothing the guest or the network controls may panic the host.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod adapter;
mod bindings;
pub mod clock;
pub mod component;
mod config;
mod error;
#[cfg(feature = "gateway")]
pub mod gateway;
mod imports;
pub mod inspect;
#[cfg(feature = "nats")]
pub mod nats;
mod outcome;
mod report;
pub mod sink;
mod slots;
pub mod sources;
mod stats;
pub mod trust;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{MAX_CALL_BUDGET, MAX_CRASH_LOOP_BACKOFF, SinkConfig};
pub use error::{HostError, SinkError};
pub use outcome::{Decision, Outcome};
pub use report::{IngestReport, ResumePoint};
pub use sink::{ApprovalSink, ApprovalSinkBuilder, InvalidationSink, Wait, WaitForApproval};
pub use stats::Stats;
pub use trust::{DecidedBy, Resolution, ReviewerKey, TrustedKey};
