//! [`NatsConfig`]: how to reach NATS and which stream holds the log.

use crate::error::NatsError;
use crate::subjects::ALL_SUBJECTS;
use async_nats::jetstream;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use std::path::PathBuf;
use std::time::Duration;

/// The stream's name unless configured otherwise.
pub const DEFAULT_STREAM: &str = "APPROVALS";

/// How to reach NATS and which stream holds the log. Credentials are read
/// from files when connecting; nothing secret is printed by `Debug`.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URLs (`nats://host:4222`, `tls://...`); any of a cluster. A
    /// `user:password@` in one of them logs in as that user.
    pub servers: Vec<String>,
    /// A `.creds` file (JWT and NKey seed).
    pub creds_file: Option<PathBuf>,
    /// A token file (whitespace trimmed).
    pub token_file: Option<PathBuf>,
    /// Trust this CA (PEM) and require TLS.
    pub ca_file: Option<PathBuf>,
    /// The stream's name. Default [`DEFAULT_STREAM`].
    pub stream: String,
    /// Replicas when this config creates the stream (3 in a 3-node cluster).
    /// Default 1.
    pub replicas: usize,
    /// Most consumers the stream allows when this config creates it
    /// (every sink's pump and every gateway subscriber holds one; a sink
    /// user's `CONSUMER.CREATE` permission also lets it create durable
    /// ones, so this bounds what a compromised agent host can pile up).
    /// Default [`DEFAULT_MAX_CONSUMERS`].
    pub max_consumers: i32,
}

/// The stream's consumer limit unless configured otherwise.
pub const DEFAULT_MAX_CONSUMERS: i32 = 10_000;

impl NatsConfig {
    /// Servers given as a comma-separated list, the default stream, no
    /// credentials.
    pub fn new(servers: &str) -> Self {
        NatsConfig {
            servers: servers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            creds_file: None,
            token_file: None,
            ca_file: None,
            stream: DEFAULT_STREAM.to_owned(),
            replicas: 1,
            max_consumers: DEFAULT_MAX_CONSUMERS,
        }
    }

    /// A short name for logs.
    pub fn describe(&self) -> String {
        format!("NATS {} stream {}", self.servers.join(","), self.stream)
    }

    /// Connects within `timeout`. The client reconnects on its own after
    /// that (to any server of the list); a refused connection (credentials
    /// or TLS) is [`NatsError::Refused`].
    pub async fn connect(&self, timeout: Duration) -> Result<async_nats::Client, NatsError> {
        let servers = self.servers.join(",");
        let failed = |message: String| NatsError::Connect {
            servers: servers.clone(),
            message,
        };
        let refused = |message: String| NatsError::Refused {
            servers: servers.clone(),
            message,
        };
        if self.servers.is_empty() {
            return Err(failed("no NATS server URL given".into()));
        }
        let mut options = async_nats::ConnectOptions::new()
            .connection_timeout(timeout)
            .ping_interval(timeout.max(Duration::from_secs(1)))
            // The client keeps reconnecting for as long as it lives; the
            // pump's backoff covers only opening the consumer again.
            .max_reconnects(None);
        if let Some(path) = &self.creds_file {
            options = options
                .credentials_file(path)
                .await
                .map_err(|e| refused(format!("credentials file {}: {e}", path.display())))?;
        }
        if let Some(path) = &self.token_file {
            let token = std::fs::read_to_string(path)
                .map_err(|e| refused(format!("token file {}: {e}", path.display())))?;
            options = options.token(token.trim().to_owned());
        }
        // `nats://user:password@host` as the other NATS clients take it
        // (async-nats reads no credentials from URLs): from the first URL
        // that has them.
        if let Some((user, password)) = self.servers.iter().find_map(|url| {
            let addr = url.parse::<async_nats::ServerAddr>().ok()?;
            Some((addr.username()?.to_owned(), addr.password()?.to_owned()))
        }) {
            options = options.user_and_password(user, password);
        }
        if let Some(ca) = &self.ca_file {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        options.connect(&self.servers).await.map_err(|e| {
            use async_nats::ConnectErrorKind as Kind;
            match e.kind() {
                Kind::Authentication | Kind::AuthorizationViolation | Kind::Tls => {
                    refused(e.to_string())
                }
                _ => failed(e.to_string()),
            }
        })
    }

    /// The stream's config when this config creates it: file storage,
    /// every subject of the log, a two-minute duplicate window for retried
    /// publishes.
    pub fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            name: self.stream.clone(),
            subjects: vec![ALL_SUBJECTS.to_owned()],
            storage: StorageType::File,
            num_replicas: self.replicas.max(1),
            duplicate_window: Duration::from_secs(120),
            allow_direct: true,
            max_consumers: self.max_consumers.max(1),
            ..Default::default()
        }
    }

    /// Binds the stream, creating it if it does not exist.
    pub async fn ensure_stream(
        &self,
        js: &jetstream::Context,
    ) -> Result<jetstream::stream::Stream, NatsError> {
        js.get_or_create_stream(self.stream_config())
            .await
            .map_err(|e| self.error(format_args!("stream {}: {e}", self.stream)))
    }

    /// A JetStream error of this log.
    pub(crate) fn error(&self, message: impl std::fmt::Display) -> NatsError {
        NatsError::Log {
            log: self.describe(),
            message: message.to_string(),
        }
    }
}
