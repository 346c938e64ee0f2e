//! [`NatsError`]: why the log could not be reached or answered.

use approval_host::sources::SourceError;

/// Why a NATS operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// No server could be reached (or none was given).
    #[error("connecting to NATS {servers}: {message}")]
    Connect {
        /// The server URLs, comma-separated.
        servers: String,
        /// What went wrong.
        message: String,
    },
    /// NATS refused this client: credentials, permissions or TLS. Retrying
    /// cannot help until the configuration changes.
    #[error("refused by NATS {servers}: {message}")]
    Refused {
        /// The server URLs, comma-separated.
        servers: String,
        /// What was refused.
        message: String,
    },
    /// JetStream answered with an error, or a stored message is not what
    /// the log holds.
    #[error("{log}: {message}")]
    Log {
        /// The log (servers and stream).
        log: String,
        /// What went wrong.
        message: String,
    },
}

impl From<NatsError> for SourceError {
    fn from(e: NatsError) -> Self {
        match e {
            NatsError::Connect { servers, message } => SourceError::Connect {
                endpoint: servers,
                message,
            },
            NatsError::Refused { servers, message } => SourceError::Refused {
                endpoint: servers,
                message,
            },
            e @ NatsError::Log { .. } => SourceError::Status(e.to_string()),
        }
    }
}
