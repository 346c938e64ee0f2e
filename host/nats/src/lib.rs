//! approval-nats: NATS JetStream as the shared, durable event log of many
//! machines (SPEC.md §5.4, §9). How to reach it ([`NatsConfig`]), its
//! subjects and the log's identity ([`subjects`]), following it
//! ([`follow()`]), reading it into a sink ([`NatsSource`], with durable
//! waits) and publishing verdicts so that the first one per id wins
//! ([`VerdictLog`]).
//!
//! Module map:
//!
//! * `config.rs`: [`NatsConfig`]: servers, credentials, TLS, the stream;
//! * [`subjects`]: subjects, the log id, stored bytes and the appended
//!   `seq`/`log_id` (the format's one owner; vectors in
//!   `tests/vectors/nats.json`);
//! * `follow.rs`: the ordered push consumer every reader uses;
//! * `source.rs`: [`NatsSource`], an `approval_host` event source;
//! * `publish.rs`: [`VerdictLog`], conditional publishing;
//! * `error.rs`: [`NatsError`];
//! * [`server`] (feature `local-server`): a `nats-server` child process for
//!   the tests and `demo --nats local`.
//!
//! # The log, as stored
//!
//! * One stream (default `APPROVALS`) over `approvals.v1.>`; any id is one
//!   subject token (base64url without padding).
//! * A message is an encoded `InvalidationEvent` without `seq`/`log_id`; a
//!   reader appends both to the raw bytes, so the host never decodes and
//!   the guest stays the only parser.
//! * Only the first verdict per id is stored (S15 in the log).

#![warn(missing_docs)]
// Nothing the network controls may panic the host.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod error;
mod follow;
mod publish;
#[cfg(feature = "local-server")]
pub mod server;
mod source;
pub mod subjects;

#[cfg(test)]
mod defaults;
#[cfg(test)]
#[path = "../../../tests/vectors/golden.rs"]
mod golden;

pub use config::{DEFAULT_MAX_CONSUMERS, DEFAULT_STREAM, NatsConfig};
pub use error::NatsError;
pub use follow::{LOG_CHECK, StoredMessages, follow};
pub use publish::{Published, VerdictConflict, VerdictLog};
pub use source::NatsSource;
pub use subjects::{
    ALL_SUBJECTS, APPENDED_MAX, INVALIDATED_ALL, RESOLVED_SUBJECTS, append_frame, filter_subjects,
    invalidated_subject, log_id, resolved_subject, stored_bytes,
};
