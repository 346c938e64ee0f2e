//! [`GatewayError`]: why a gateway could not be built or serve.

/// Why a gateway could not be built or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A non-loopback address without TLS and both tokens (SPEC.md §8).
    #[error(
        "refusing to listen on {addr} without TLS and both tokens: anyone who can reach it \
         could approve any request. Give a TLS identity and both tokens, or allow it \
         explicitly for development (--insecure-dev)"
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
