//! The NATS flags every command that talks to the JetStream log takes
//! (`--nats`, `--nats-creds`, `--nats-token-file`, `--nats-ca`, `--stream`,
//! `--nats-replicas`), and `--nats local`: a `nats-server -js` started on a
//! free loopback port with a temporary store, as `--gateway local` starts a
//! gateway.

use anyhow::Context;
use approval_nats::server::{HOW_TO_GET, LocalServer, find_binary, free_port};
use approval_nats::{DEFAULT_STREAM, NatsConfig, VerdictLog};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// How long connecting to NATS may take before a command gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Args, Clone, Default)]
pub struct NatsArgs {
    /// Use the NATS JetStream log at this URL (comma-separated for a
    /// cluster) instead of a gateway's gRPC.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// NATS credentials file (JWT and NKey seed).
    #[arg(long, requires = "nats", value_name = "FILE")]
    nats_creds: Option<PathBuf>,
    /// NATS token (file, whitespace trimmed).
    #[arg(long, requires = "nats", value_name = "FILE")]
    nats_token_file: Option<PathBuf>,
    /// Trust this CA (PEM) for NATS and require TLS.
    #[arg(long, requires = "nats", value_name = "PEM")]
    nats_ca: Option<PathBuf>,
    /// The JetStream stream holding the log (created when missing).
    #[arg(long, default_value = DEFAULT_STREAM)]
    stream: String,
    /// Replicas of the stream when this command creates it (3 in a 3-node
    /// cluster).
    #[arg(long, default_value_t = 1)]
    nats_replicas: usize,
}

impl NatsArgs {
    /// The log's config for `servers` with these flags.
    pub fn config_for(&self, servers: &str) -> NatsConfig {
        let mut config = NatsConfig::new(servers);
        config.creds_file.clone_from(&self.nats_creds);
        config.token_file.clone_from(&self.nats_token_file);
        config.ca_file.clone_from(&self.nats_ca);
        config.stream.clone_from(&self.stream);
        config.replicas = self.nats_replicas;
        config
    }

    /// The log's config when `--nats` was given.
    pub fn config(&self) -> Option<NatsConfig> {
        self.nats.as_deref().map(|servers| self.config_for(servers))
    }
}

/// Opens the log of `config` (connect, bind or create the stream).
pub async fn open(config: NatsConfig) -> anyhow::Result<VerdictLog> {
    let name = config.describe();
    VerdictLog::open(config, CONNECT_TIMEOUT)
        .await
        .with_context(|| format!("opening {name}"))
}

/// A `nats-server -js` on a free loopback port with a temporary store,
/// removed when dropped.
pub struct LocalNats {
    server: LocalServer,
    store: PathBuf,
}

impl LocalNats {
    /// Starts one; fails with how to get `nats-server` when it is missing.
    pub fn start() -> anyhow::Result<Self> {
        let binary = find_binary().ok_or_else(|| anyhow::anyhow!(HOW_TO_GET))?;
        let store = std::env::temp_dir().join(format!(
            "approval-sink-nats-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let server = LocalServer::start(&binary, free_port()?, &store, &[])
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(LocalNats { server, store })
    }

    /// Its client URL.
    pub fn url(&self) -> String {
        self.server.url()
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        self.server.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
