//! Component test harness of approval-sink.
//!
//! * [`plugin`] loads the `approval-plugin` component straight into wasmtime
//!   (async ABI, `run_concurrent`) with a `ManualClock` timer;
//! * [`sinks`] builds host-adapter sinks on the embedded `approval-registry`
//!   component with a `ManualClock`;
//! * [`events`] encodes gateway events and frames;
//! * [`nats`] runs real `nats-server`s (single or a cluster) on loopback;
//! * [`process`] runs other toolchains' commands (npm, pip, pytest, cargo);
//! * [`time`] holds the time units and the settle helpers.
//!
//! The suites live in `tests/`; each is named for the semantics it proves.

#![warn(missing_docs)]

pub mod events;
pub mod nats;
pub mod plugin;
pub mod process;
pub mod sinks;
pub mod time;

/// The README's Rust snippets, compiled (and, but for those that need a
/// network peer, run) as doctests of this crate, which depends on every
/// library they use.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeSnippets;
