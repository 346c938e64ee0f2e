//! `approval-sink gateway`: a development gateway, over its own in-memory
//! log or (`--nats`) the shared JetStream log.

use super::client::{read, read_token, runtime, trusted_keys};
use super::nats::NatsArgs;
use anyhow::Context;
use approval_gateway::{Gateway, GatewayLog, LogLimits, ServerTls};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct GatewayArgs {
    /// Address to listen on. Anything but loopback needs TLS and both token
    /// files (or --insecure-dev).
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: String,
    /// Events kept for replay to subscribers that resume.
    #[arg(long, default_value_t = LogLimits::default().retention)]
    retention: usize,
    /// Encoded bytes kept for replay; the oldest events go first.
    #[arg(long, default_value_t = LogLimits::default().retain_bytes)]
    retain_bytes: usize,
    /// Most open subscriptions; more are refused (RESOURCE_EXHAUSTED).
    #[arg(long, default_value_t = LogLimits::default().max_subscribers)]
    max_subscribers: usize,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// Require client certificates issued by this CA (mTLS; needs TLS).
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    client_ca: Option<PathBuf>,
    /// Require this bearer token (file, whitespace trimmed) on ReviewService.
    #[arg(long, value_name = "FILE")]
    review_token_file: Option<PathBuf>,
    /// Require this bearer token (file, whitespace trimmed) on Subscribe.
    #[arg(long, value_name = "FILE")]
    subscribe_token_file: Option<PathBuf>,
    /// Accept only verdicts signed by this reviewer key (`ID.pub`;
    /// repeatable), and let the first verdict per request win.
    #[arg(long, value_name = "PUB")]
    trusted_key: Vec<PathBuf>,
    /// Listen on a non-loopback address without TLS and tokens anyway.
    #[arg(long)]
    insecure_dev: bool,
    /// Serve the shared JetStream log (--nats URL) instead of an in-memory
    /// one: stateless, any number of gateways on one stream.
    #[command(flatten)]
    nats: NatsArgs,
}

/// Serves the development gateway until Ctrl-C, refusing an exposed
/// listener the way `Gateway::serve` does.
pub fn serve(args: GatewayArgs) -> anyhow::Result<()> {
    let keys = trusted_keys(&args.trusted_key)?;
    let limits = LogLimits {
        retention: args.retention,
        retain_bytes: args.retain_bytes,
        max_subscribers: args.max_subscribers,
    };
    let runtime = runtime()?;
    let log = match args.nats.config() {
        None => Gateway::new(GatewayLog::with_limits(limits)),
        Some(config) => Gateway::nats(runtime.block_on(super::nats::open(config))?),
    };
    let mut gateway = log.trusted_keys(&keys).context("--trusted-key")?;
    if args.insecure_dev {
        gateway = gateway.insecure_dev();
    }
    if let Some(path) = &args.review_token_file {
        gateway = gateway.review_token(read_token(path)?);
    }
    if let Some(path) = &args.subscribe_token_file {
        gateway = gateway.subscribe_token(read_token(path)?);
    }
    let scheme = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            gateway = gateway.tls(ServerTls {
                cert_pem: read(cert)?,
                key_pem: read(key)?,
                client_ca_pem: args.client_ca.as_deref().map(read).transpose()?,
            });
            "https"
        }
        _ => "http",
    };
    let backend = match &args.nats.nats {
        Some(servers) => format!(" over NATS {servers}"),
        None => String::new(),
    };
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        println!(
            "gateway listening on {scheme}://{}{backend} (Ctrl-C stops it)",
            listener.local_addr()?
        );
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        gateway.serve(listener, shutdown).await?;
        Ok(())
    })
}
