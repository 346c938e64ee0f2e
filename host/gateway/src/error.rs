//! [`GatewayError`]: why a gateway could not be built or serve.

/// Why a gateway could not be built or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No tokens, or only one: anyone who can connect could approve
    /// (SPEC.md §8).
    #[error(
        "refusing to serve {addr} without a review token and a subscribe token: anyone who can \
         connect could approve any request. Make them with `approval-sink tokens --dir DIR`, or \
         allow it explicitly for development (--insecure-dev)"
    )]
    Open {
        /// The address the listener is bound to.
        addr: std::net::SocketAddr,
    },
    /// The review token and the subscribe token are the same secret.
    #[error(
        "the review token and the subscribe token are the same: a subscriber could approve. \
         Give each service its own (`approval-sink tokens --dir DIR`)"
    )]
    SameToken,
    /// A non-loopback address without TLS (SPEC.md §8).
    #[error(
        "refusing to listen on {addr} without TLS: the tokens and verdicts would cross the \
         network in clear. Give a TLS identity, or allow it explicitly for development \
         (--insecure-dev)"
    )]
    Exposed {
        /// The address the listener is bound to.
        addr: std::net::SocketAddr,
    },
    /// A trusted reviewer key the gateway cannot use.
    #[error("trusted key: {0}")]
    TrustedKey(&'static str),
    /// The listener's address could not be read.
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
    /// The gRPC server failed (TLS configuration, transport).
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
}
