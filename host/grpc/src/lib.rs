//! approval-grpc: the gRPC clients of the approval gateway (SPEC.md §9):
//! [`GrpcSource`] subscribes a sink to `InvalidationService.Subscribe`, and
//! [`ReviewClient`] is what a reviewer's tool calls (`ReviewService`). Both
//! speak TLS through rustls ([`ClientTls`]) and send a bearer token on
//! every call. Client only: the gateway's server is `approval-gateway`.
//!
//! Module map:
//!
//! * `source.rs`: [`GrpcSource`], an `approval_host` event source whose
//!   messages reach the guest undecoded;
//! * `lookup.rs`: its durable waits through the gateway's `Lookup`;
//! * `review.rs`: [`ReviewClient`] and [`ReviewError`];
//! * `tls.rs`: [`ClientTls`], [`connect_channel`] (the channel every
//!   client uses) and [`check_credentials`] (no credential in clear);
//! * `token.rs`: [`bearer`] metadata and the [`Bearer`] interceptor;
//! * `refusal.rs`: telling a refusal (credentials, TLS) from an outage.

#![warn(missing_docs)]
// Nothing the network controls may panic the host.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod lookup;
mod refusal;
mod review;
mod source;
mod tls;
mod token;

#[cfg(test)]
mod defaults;
#[cfg(test)]
#[path = "../../../tests/vectors/golden.rs"]
mod golden;

pub use refusal::{connect_error, status_error};
pub use review::{ReviewClient, ReviewError};
pub use source::{DEFAULT_MAX_MESSAGE_BYTES, GrpcSource};
pub use tls::{CONNECT_DEADLINE, ClientTls, check_credentials, connect_channel, connect_endpoint};
pub use token::{Bearer, bearer};
