//! `approval-sink gateway | wait | resolve | invalidate`: a development
//! gateway and its three clients, so a user can watch a wait finish from two
//! terminals.

use anyhow::Context;
use approval_host::gateway::{Gateway, GatewayLog, LogLimits};
use approval_host::sources::GrpcSource;
use approval_host::{ApprovalSink, Decision};
use approval_proto::grpc::review_service_client::ReviewServiceClient;
use approval_proto::{ApprovalResolved, PolicyInvalidated};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct GatewayArgs {
    /// Address to listen on.
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
}

#[derive(Args)]
pub struct WaitArgs {
    /// The gateway's URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    gateway: String,
    /// The approval request to wait on.
    #[arg(long)]
    request_id: String,
    /// How long to wait before falling back to Pending (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Args)]
pub struct ResolveArgs {
    /// The gateway's URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    gateway: String,
    /// The approval request to decide.
    #[arg(long)]
    request_id: String,
    /// Approve the request.
    #[arg(long, conflicts_with = "deny", required_unless_present = "deny")]
    approve: bool,
    /// Deny the request.
    #[arg(long)]
    deny: bool,
    /// Who decided.
    #[arg(long, default_value = "cli")]
    reviewer: String,
}

#[derive(Args)]
pub struct InvalidateArgs {
    /// The gateway's URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    gateway: String,
    /// The agent whose policy changed; empty: every agent.
    #[arg(long, default_value = "")]
    agent_id: String,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn serve(args: GatewayArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        println!(
            "gateway listening on http://{} (Ctrl-C stops it)",
            listener.local_addr()?
        );
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let limits = LogLimits {
            retention: args.retention,
            retain_bytes: args.retain_bytes,
            max_subscribers: args.max_subscribers,
        };
        Gateway::new(GatewayLog::with_limits(limits))
            .serve(listener, shutdown)
            .await?;
        Ok(())
    })
}

/// Exit code of `wait`: 0 approved, 1 denied, 2 pending (no answer in
/// time), 3 the gateway was never reached during the whole wait.
pub fn wait(args: WaitArgs, component: Option<PathBuf>) -> anyhow::Result<i32> {
    runtime()?.block_on(async {
        let mut builder = ApprovalSink::builder();
        if let Some(path) = component {
            builder = builder.component_file(path);
        }
        let sink = builder.build()?;
        let fut = sink.wait_for_approval(&args.request_id, args.timeout);
        let pump = sink.pump(GrpcSource::new(args.gateway.clone()));
        eprintln!(
            "waiting up to {} for {} ...",
            humantime::format_duration(args.timeout),
            args.request_id
        );
        let decision = fut.await;
        println!("{}", decision.as_str_name());
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

pub fn resolve(args: ResolveArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut client = ReviewServiceClient::connect(args.gateway.clone()).await?;
        let decision = if args.approve {
            Decision::Approved
        } else {
            Decision::Denied
        };
        let reply = client
            .resolve(ApprovalResolved {
                request_id: args.request_id.clone(),
                decision: decision as i32,
                reviewer: args.reviewer,
                resolved_at_unix_ms: unix_ms(),
                ..Default::default()
            })
            .await?
            .into_inner();
        println!(
            "{} {} (seq {})",
            args.request_id,
            decision.as_str_name(),
            reply.seq
        );
        Ok(())
    })
}

pub fn invalidate(args: InvalidateArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut client = ReviewServiceClient::connect(args.gateway.clone()).await?;
        let reply = client
            .invalidate(PolicyInvalidated {
                agent_id: args.agent_id.clone(),
            })
            .await?
            .into_inner();
        let who = if args.agent_id.is_empty() {
            "every agent"
        } else {
            &args.agent_id
        };
        println!("policy invalidated for {who} (seq {})", reply.seq);
        Ok(())
    })
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
