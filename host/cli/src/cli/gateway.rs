//! `approval-sink gateway`: the single-node gateway, over its durable
//! SQLite log (default `$XDG_DATA_HOME/approval-sink/gateway`), an
//! in-memory one (`--in-memory`), or (`--nats`) the shared JetStream log.

use super::client::{read, read_token, runtime, trusted_keys};
use super::nats::NatsArgs;
use anyhow::Context;
use approval_gateway::{Gateway, GatewayLog, LogLimits, Policy, ServerTls};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct GatewayArgs {
    /// Address to listen on. Both token files are required on every
    /// address, and TLS on anything but loopback (or --insecure-dev).
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: String,
    /// Keep the log here (created with mode 0700 when missing; one gateway
    /// per directory). Default: $XDG_DATA_HOME/approval-sink/gateway, or
    /// ~/.local/share/approval-sink/gateway.
    #[arg(long, value_name = "DIR", conflicts_with = "in_memory")]
    data_dir: Option<PathBuf>,
    /// Keep the log in memory only: every event and verdict is lost when
    /// the gateway stops (tests, benches, demos).
    #[arg(long)]
    in_memory: bool,
    /// How long a verdict stays final: the other decision is refused for
    /// that long (at least 24h, the longest wait a sink accepts).
    #[arg(long, default_value = "7days", value_parser = humantime::parse_duration)]
    verdict_ttl: Duration,
    /// Most request ids with a recorded verdict; a new verdict past it is
    /// refused (RESOURCE_EXHAUSTED), never admitted by forgetting one.
    #[arg(long, default_value_t = LogLimits::default().max_verdicts)]
    max_verdicts: u64,
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
    /// Require this bearer token (file, whitespace trimmed) on Subscribe
    /// and Lookup.
    #[arg(long, value_name = "FILE")]
    subscribe_token_file: Option<PathBuf>,
    /// Accept only verdicts signed by this reviewer key (`ID.pub`;
    /// repeatable). The first verdict per request is final either way.
    #[arg(long, value_name = "PUB")]
    trusted_key: Vec<PathBuf>,
    /// Serve without both tokens, and off loopback without TLS: anyone who
    /// can connect may approve. Development only; warned every minute.
    #[arg(long)]
    insecure_dev: bool,
    /// Serve the shared JetStream log (--nats URL) instead of a local one:
    /// stateless, any number of gateways on one stream.
    #[command(flatten)]
    nats: NatsArgs,
}

/// Serves the gateway until Ctrl-C. Refuses what `Gateway::serve` refuses
/// (no tokens, one secret for both, plaintext off loopback) before it
/// opens or creates any log.
pub fn serve(args: GatewayArgs) -> anyhow::Result<()> {
    let keys = trusted_keys(&args.trusted_key)?;
    let review_token = args
        .review_token_file
        .as_deref()
        .map(read_token)
        .transpose()?;
    let subscribe_token = args
        .subscribe_token_file
        .as_deref()
        .map(read_token)
        .transpose()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(ServerTls {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            client_ca_pem: args.client_ca.as_deref().map(read).transpose()?,
        }),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let runtime = runtime()?;
    let policy = Policy {
        review_token: review_token.as_ref(),
        subscribe_token: subscribe_token.as_ref(),
        tls: tls.is_some(),
        insecure_dev: args.insecure_dev,
    };
    // Refused before anything is bound or opened when the address is
    // literal; a host name is checked once bound.
    if let Ok(addr) = args.listen.parse() {
        policy.check(addr)?;
    }
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        policy.check(addr)?;
        let (gateway, backend) = open_log(&args).await?;
        let mut gateway = gateway.trusted_keys(&keys).context("--trusted-key")?;
        if args.insecure_dev {
            gateway = gateway.insecure_dev();
        }
        if let Some(token) = review_token.clone() {
            gateway = gateway.review_token(token);
        }
        if let Some(token) = subscribe_token.clone() {
            gateway = gateway.subscribe_token(token);
        }
        if let Some(tls) = tls {
            gateway = gateway.tls(tls);
        }
        println!("gateway listening on {scheme}://{addr}{backend} (Ctrl-C stops it)");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        gateway.serve(listener, shutdown).await?;
        Ok(())
    })
}

/// The gateway over the log the flags name, and how the first line names
/// that log.
async fn open_log(args: &GatewayArgs) -> anyhow::Result<(Gateway, String)> {
    let limits = LogLimits {
        retention: args.retention,
        retain_bytes: args.retain_bytes,
        max_subscribers: args.max_subscribers,
        max_verdicts: args.max_verdicts,
        verdict_ttl: args.verdict_ttl,
    };
    if let Some(config) = args.nats.config() {
        let servers = args.nats.nats.as_deref().unwrap_or_default();
        return Ok((
            Gateway::nats(super::nats::open(config).await?),
            format!(" over NATS {servers}"),
        ));
    }
    if args.in_memory {
        tracing::warn!(
            "in-memory log: every event and verdict is lost when this gateway stops \
             (without --in-memory it keeps them in a directory)"
        );
        let log = GatewayLog::in_memory(limits)?;
        return Ok((Gateway::new(log), " with its log in memory".to_owned()));
    }
    let dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => default_data_dir()?,
    };
    let log = GatewayLog::open(&dir, limits)
        .with_context(|| format!("opening the log in {}", dir.display()))?;
    tracing::info!(
        dir = %dir.display(),
        log_id = log.log_id(),
        last_seq = log.last_seq(),
        "log opened"
    );
    Ok((
        Gateway::new(log),
        format!(" with its log in {}", dir.display()),
    ))
}

/// `$XDG_DATA_HOME/approval-sink/gateway`, or
/// `$HOME/.local/share/approval-sink/gateway` (XDG's default).
fn default_data_dir() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME").map(PathBuf::from) {
        // The XDG spec ignores a relative value.
        Some(dir) if dir.is_absolute() => dir,
        _ => {
            let home = std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .context("neither XDG_DATA_HOME nor HOME is set: give --data-dir or --in-memory")?;
            PathBuf::from(home).join(".local/share")
        }
    };
    Ok(base.join("approval-sink").join("gateway"))
}
