//! `approval-sink gateway | wait | resolve | invalidate`: a development
//! gateway and its three clients, so a user can watch a wait finish from two
//! terminals. With `--nats`, the gateway serves the shared JetStream log
//! instead of its own, and the clients use that log directly (`wait`
//! subscribes to it; `resolve` publishes with the gateway's checks).

use super::nats::NatsArgs;
use anyhow::Context;
use approval_gateway::{Gateway, GatewayLog, LogLimits, ServerTls, Token, check_resolve};
use approval_grpc::{ClientTls, GrpcSource, ReviewClient, ReviewError};
use approval_host::{ApprovalSink, Decision, Outcome, ReviewerKey, TrustedKey};
use approval_nats::{NatsSource, VerdictConflict};
use approval_proto::ApprovalResolved;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// How a client reaches a gateway: URL, TLS and token.
#[derive(Args)]
pub struct ClientArgs {
    /// The gateway's URL (https:// for TLS).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    gateway: String,
    /// Send this bearer token (file, whitespace trimmed).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Trust this CA (PEM) instead of the system roots; implies TLS.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Present this client certificate (PEM; mTLS); needs --client-key.
    #[arg(long, requires = "client_key", value_name = "PEM")]
    client_cert: Option<PathBuf>,
    /// The private key of --client-cert (PEM).
    #[arg(long, requires = "client_cert", value_name = "PEM")]
    client_key: Option<PathBuf>,
    /// Use the JetStream log directly (--nats URL) instead of --gateway.
    #[command(flatten)]
    nats: NatsArgs,
}

#[derive(Args)]
pub struct WaitArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The approval request to wait on.
    #[arg(long)]
    request_id: String,
    /// How long to wait before falling back to Pending (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Apply only verdicts signed by this reviewer key (`ID.pub`;
    /// repeatable).
    #[arg(long, value_name = "PUB")]
    trusted_key: Vec<PathBuf>,
}

#[derive(Args)]
pub struct ResolveArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The approval request to decide.
    #[arg(long)]
    request_id: String,
    /// Approve the request.
    #[arg(long, conflicts_with = "deny", required_unless_present = "deny")]
    approve: bool,
    /// Deny the request.
    #[arg(long)]
    deny: bool,
    /// Who decided (default: the signing key's id, else "cli").
    #[arg(long)]
    reviewer: Option<String>,
    /// Sign the verdict with this reviewer key (`ID.key`, PKCS#8 PEM).
    #[arg(long, value_name = "KEY")]
    signing_key: Option<PathBuf>,
}

#[derive(Args)]
pub struct InvalidateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The agent whose policy changed; empty: every agent.
    #[arg(long, default_value = "")]
    agent_id: String,
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_token(path: &Path) -> anyhow::Result<Token> {
    Token::new(&read(path)?).with_context(|| format!("{} holds no token", path.display()))
}

fn trusted_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<TrustedKey>> {
    paths
        .iter()
        .map(|p| TrustedKey::read(p).with_context(|| format!("trusted key {}", p.display())))
        .collect()
}

impl ClientArgs {
    fn tls(&self) -> anyhow::Result<Option<ClientTls>> {
        let identity = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            _ => None,
        };
        if self.ca.is_none() && identity.is_none() {
            return Ok(None);
        }
        Ok(Some(ClientTls {
            ca_pem: self.ca.as_deref().map(read).transpose()?,
            identity_pem: identity,
            domain: None,
        }))
    }

    fn token(&self) -> anyhow::Result<Option<String>> {
        self.token_file
            .as_deref()
            .map(|p| {
                let token = read(p)?.trim().to_owned();
                anyhow::ensure!(!token.is_empty(), "{} holds no token", p.display());
                Ok(token)
            })
            .transpose()
    }

    /// A `ReviewService` client with TLS and the token on every call.
    async fn review_client(&self) -> anyhow::Result<ReviewClient> {
        let tls = self.tls()?;
        let token = self.token()?;
        Ok(ReviewClient::connect(&self.gateway, tls.as_ref(), token.as_deref()).await?)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

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

/// Exit code of `wait`: 0 approved, 1 denied, 2 pending (no answer in
/// time), 3 not served: credentials or TLS refused (at once), or the
/// gateway never reached during the whole wait. Prints one line on stdout:
/// the decision, then ` reviewer=NAME` when known and ` key=ID` when signed.
pub fn wait(args: WaitArgs, component: Option<PathBuf>) -> anyhow::Result<i32> {
    let keys = trusted_keys(&args.trusted_key)?;
    let tls = args.client.tls()?;
    let token = args.client.token()?;
    runtime()?.block_on(async {
        let mut builder = ApprovalSink::builder().trusted_keys(keys);
        if let Some(path) = component {
            builder = builder.component_file(path);
        }
        let sink = builder.build()?;
        // The pump first: with NATS it also looks the new wait up in the
        // log (a verdict published before this wait began).
        let pump = match args.client.nats.config() {
            Some(config) => sink.pump(NatsSource::new(config)),
            None => {
                let mut source = GrpcSource::new(args.client.gateway.clone());
                if let Some(tls) = tls {
                    source = source.tls(tls);
                }
                if let Some(token) = token {
                    source = source.bearer_token(token);
                }
                sink.pump(source)
            }
        };
        let wait = sink.wait_detailed(&args.request_id, args.timeout);
        eprintln!(
            "waiting up to {} for {} ...",
            humantime::format_duration(args.timeout),
            args.request_id
        );
        let refused = async {
            loop {
                if pump.stats().refused > 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let resolution = tokio::select! {
            resolution = wait => resolution?,
            () = refused => {
                // Still exactly one line on stdout: no decision was made.
                println!("{}", Decision::Pending.as_str_name());
                let why = pump.stats().last_error.unwrap_or_default();
                eprintln!("the gateway refused this client: {why}");
                return Ok(3);
            }
        };
        let decision = match resolution.outcome {
            Outcome::Decided(d) => d,
            _ => Decision::Pending,
        };
        let mut line = decision.as_str_name().to_owned();
        if let Some(by) = &resolution.decided_by {
            if let Some(reviewer) = &by.reviewer {
                line.push_str(&format!(" reviewer={reviewer}"));
            }
            if let Some(key) = &by.key_id {
                line.push_str(&format!(" key={key}"));
            }
        }
        println!("{line}");
        Ok(match decision {
            Decision::Approved => 0,
            Decision::Denied => 1,
            // Pending because nobody could have answered: not served.
            _ if pump.stats().connects == 0 => {
                let why = pump.stats().last_error.unwrap_or_default();
                eprintln!("the gateway was never reached: {why}");
                3
            }
            _ => 2,
        })
    })
}

/// Exit code of `resolve`: 0 published (or the same verdict already
/// stands), 4 a different verdict already stands (it is printed); anything
/// not served is an error (exit 3).
pub fn resolve(args: ResolveArgs) -> anyhow::Result<i32> {
    let signing = args
        .signing_key
        .as_deref()
        .map(|p| ReviewerKey::read(p).with_context(|| format!("signing key {}", p.display())))
        .transpose()?;
    let reviewer = args
        .reviewer
        .clone()
        .or_else(|| signing.as_ref().map(|k| k.id().to_owned()))
        .unwrap_or_else(|| "cli".to_owned());
    let decision = if args.approve {
        Decision::Approved
    } else {
        Decision::Denied
    };
    let mut verdict = ApprovalResolved {
        request_id: args.request_id.clone(),
        decision: decision as i32,
        reviewer,
        resolved_at_unix_ms: unix_ms(),
        ..Default::default()
    };
    if let Some(key) = &signing {
        key.sign(&mut verdict);
    }
    if let Some(config) = args.client.nats.config() {
        return runtime()?.block_on(resolve_in_log(config, verdict));
    }
    runtime()?.block_on(async {
        let mut client = args.client.review_client().await?;
        match client.resolve(verdict).await {
            Ok(seq) => {
                println!("{} {} (seq {seq})", args.request_id, decision.as_str_name());
                Ok(0)
            }
            Err(ReviewError::AlreadyDecided(standing)) => {
                println!("{standing}");
                Ok(4)
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// `resolve --nats`: the gateway's checks, then its conditional publish
/// straight to the log (development; in a deployment only gateways may
/// publish verdict subjects).
async fn resolve_in_log(
    config: approval_nats::NatsConfig,
    verdict: ApprovalResolved,
) -> anyhow::Result<i32> {
    check_resolve(&verdict).map_err(|status| anyhow::anyhow!("{}", status.message()))?;
    let log = super::nats::open(config).await?;
    match log.publish_verdict(&verdict).await {
        Ok(published) => {
            let decision = Decision::try_from(verdict.decision).unwrap_or(Decision::Unspecified);
            println!(
                "{} {} (seq {})",
                verdict.request_id,
                decision.as_str_name(),
                published.seq
            );
            Ok(0)
        }
        Err(conflict @ VerdictConflict::Decided { .. }) => {
            println!("{conflict}");
            Ok(4)
        }
        Err(VerdictConflict::Log(e)) => Err(e.into()),
    }
}

pub fn invalidate(args: InvalidateArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let seq = match args.client.nats.config() {
            Some(config) => {
                let invalidated = approval_proto::PolicyInvalidated {
                    agent_id: args.agent_id.clone(),
                };
                super::nats::open(config)
                    .await?
                    .publish_invalidation(&invalidated)
                    .await?
            }
            None => {
                let mut client = args.client.review_client().await?;
                client.invalidate(&args.agent_id).await?
            }
        };
        let who = if args.agent_id.is_empty() {
            "every agent"
        } else {
            &args.agent_id
        };
        println!("policy invalidated for {who} (seq {seq})");
        Ok(())
    })
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
