//! `approval-sink demo`: the main job, end to end on one sink.
//!
//! Thousands of simulated agents each ask for approval and wait. A simulated
//! reviewer decides most requests after a human-like delay and sends its
//! verdicts the way a gateway does: sequenced `InvalidationEvent`s, encoded
//! as length-delimited protobuf frames, fed to the sink in chunks (so the
//! stream path through the component is what carries them). A few verdicts
//! arrive before their agent starts waiting (the early-verdict cache), a few
//! policy invalidations are mixed in, and the rest of the requests are never
//! answered, so their agents fall back to `Pending` at their timeout.
//!
//! Every agent's result is checked against the reviewer's plan: a wrong
//! verdict (or a `Denied` nobody sent) fails the demo with exit code 1.

use super::nats::LocalNats;
use approval_gateway::{Gateway, GatewayLog};
use approval_grpc::GrpcSource;
use approval_host::{ApprovalSink, Decision, ReviewerKey};
use approval_nats::{NatsConfig, NatsSource};
use approval_proto::grpc::review_service_client::ReviewServiceClient;
use approval_proto::{ApprovalResolved, Event, InvalidationEvent, PolicyInvalidated};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

#[derive(Args)]
pub struct DemoArgs {
    /// Simulated agents, each waiting on its own approval request.
    #[arg(long, default_value_t = 4000)]
    agents: usize,
    /// How long an agent waits before falling back to Pending.
    #[arg(long, default_value = "1500", value_name = "MS")]
    timeout_ms: u64,
    /// Share of requests the reviewer never answers (they time out).
    #[arg(long, default_value_t = 0.1)]
    unanswered: f64,
    /// Share of answered requests that are denied.
    #[arg(long, default_value_t = 0.25)]
    deny: f64,
    /// Seed of the simulation's randomness.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Go through a gRPC gateway: the reviewer publishes with
    /// `ReviewService.Resolve` and the sink subscribes with
    /// `InvalidationService.Subscribe`. `local` starts one in-process on
    /// 127.0.0.1; otherwise a URL such as `http://127.0.0.1:50051`.
    #[arg(long, value_name = "URL|local", conflicts_with = "nats")]
    gateway: Option<String>,
    /// Go through NATS JetStream, the shared log of many machines: the
    /// reviewer publishes through an in-process gateway over the stream
    /// (first verdict per id wins in the log; with --signed it verifies
    /// before publishing) and the sink consumes the stream directly.
    /// `local` starts a `nats-server -js` on a free loopback port with a
    /// temporary store; otherwise a URL such as `nats://127.0.0.1:4222`.
    #[arg(long, value_name = "URL|local")]
    nats: Option<String>,
    /// The reviewer signs every verdict with an Ed25519 key the sink
    /// trusts, and an attacker publishes an approval for every request
    /// first: unsigned, signed by its own key, or forged in the reviewer's
    /// name. The sink must reject them all (`wrong verdicts 0`).
    #[arg(long)]
    signed: bool,
}

/// The keys of `--signed`: the reviewer's, trusted by the sink, and the
/// attacker's.
struct Keys {
    reviewer: ReviewerKey,
    attacker: ReviewerKey,
}

impl Keys {
    /// The attacker's approval of `request_id`, one of three kinds in turn.
    fn forgery(&self, request_id: String, n: u64) -> ApprovalResolved {
        let mut forged = ApprovalResolved {
            request_id,
            decision: Decision::Approved as i32,
            reviewer: self.reviewer.id().into(),
            ..Default::default()
        };
        match n % 3 {
            // Unsigned.
            0 => {}
            // Signed by the attacker's own (untrusted) key.
            1 => self.attacker.sign(&mut forged),
            // Signed by the attacker, claiming the reviewer's key.
            _ => {
                self.attacker.sign(&mut forged);
                forged.key_id = self.reviewer.id().into();
            }
        }
        forged
    }
}

/// Forgeries a verifying gateway refused before they reached the log (the
/// NATS demo's; one run per process), counted with the sink's own
/// rejections in the summary.
static REFUSED_AT_GATEWAY: AtomicU64 = AtomicU64::new(0);

/// How the simulated reviewer's verdicts reach the sink.
#[derive(Clone)]
enum Reviewer {
    /// Length-delimited frames straight into the sink's stream input.
    Frames(ApprovalSink),
    /// `ReviewService` of a gateway the sink is subscribed to.
    Gateway(ReviewServiceClient<Channel>),
}

/// What the reviewer will do with one request.
#[derive(Clone, Copy)]
struct Plan {
    /// When the agent starts waiting, from the start of the run.
    starts: Duration,
    /// The verdict and when it is sent, if the reviewer answers.
    verdict: Option<(Decision, Duration)>,
}

/// How one agent's wait ended.
struct AgentOutcome {
    agent: usize,
    decision: Decision,
    waited: Duration,
}

pub fn run(args: DemoArgs, component: Option<PathBuf>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(demo(args, component))
}

fn plan(args: &DemoArgs) -> Vec<Plan> {
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let timeout = args.timeout_ms as f64;
    (0..args.agents)
        .map(|_| {
            let starts = rng.f64() * 500.0;
            let verdict = (rng.f64() >= args.unanswered).then(|| {
                let decision = if rng.f64() < args.deny {
                    Decision::Denied
                } else {
                    Decision::Approved
                };
                // Mostly a human-like delay well inside the timeout; one in
                // twenty answers lands before the agent even starts waiting.
                let at = if rng.f64() < 0.05 {
                    (starts - 5.0).max(0.0)
                } else {
                    starts + 20.0 + rng.f64() * timeout * 0.5
                };
                (decision, Duration::from_secs_f64(at / 1000.0))
            });
            Plan {
                starts: Duration::from_secs_f64(starts / 1000.0),
                verdict,
            }
        })
        .collect()
}

async fn demo(args: DemoArgs, component: Option<PathBuf>) -> anyhow::Result<()> {
    let keys = if args.signed {
        Some(Arc::new(Keys {
            reviewer: ReviewerKey::generate("demo-reviewer")?,
            attacker: ReviewerKey::generate("mallory")?,
        }))
    } else {
        None
    };
    let mut builder = ApprovalSink::builder();
    if let Some(keys) = &keys {
        builder = builder.trusted_key(keys.reviewer.trusted());
    }
    if let Some(path) = component {
        builder = builder.component_file(path);
    }
    let sink = builder.build()?;
    let mut _nats_server = None;
    let (reviewer, _pump, _gateway) = match (args.gateway.as_deref(), args.nats.as_deref()) {
        (None, None) => (Reviewer::Frames(sink.clone()), None, None),
        (_, Some(nats)) => {
            let url = if nats == "local" {
                let server = LocalNats::start()?;
                let url = server.url();
                _nats_server = Some(server);
                url
            } else {
                nats.to_owned()
            };
            let config = NatsConfig::new(&url);
            let log = super::nats::open(config.clone()).await?;
            let keys: Vec<_> = keys.iter().map(|k| k.reviewer.trusted()).collect();
            let gateway = Gateway::nats(log).trusted_keys(&keys)?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let gateway_url = format!("http://{}", listener.local_addr()?);
            let serve = tokio::spawn(gateway.serve(listener, std::future::pending()));
            let pump = sink.pump(NatsSource::new(config));
            let client = ReviewServiceClient::connect(gateway_url).await?;
            println!("reviewing through NATS JetStream at {url} (stream APPROVALS)");
            (Reviewer::Gateway(client), Some(pump), Some(serve))
        }
        (Some(url), None) => {
            let (url, gateway) = match url {
                "local" => {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                    let url = format!("http://{}", listener.local_addr()?);
                    let serve = Gateway::new(GatewayLog::new(1 << 20))
                        .serve(listener, std::future::pending());
                    (url, Some(tokio::spawn(serve)))
                }
                url => (url.to_string(), None),
            };
            let pump = sink.pump(GrpcSource::new(url.clone()));
            let client = ReviewServiceClient::connect(url.clone()).await?;
            println!("reviewing through the gRPC gateway at {url}");
            (Reviewer::Gateway(client), Some(pump), gateway)
        }
    };
    let plans = Arc::new(plan(&args));
    let signed = keys.as_deref().map(|keys| sign_all(keys, &plans));
    let timeout = Duration::from_millis(args.timeout_ms);
    let start = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();

    for (agent, p) in plans.iter().copied().enumerate() {
        let sink = sink.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until((start + p.starts).into()).await;
            let began = Instant::now();
            let decision = sink
                .wait_for_approval(format!("req-{agent}"), timeout)
                .await;
            let _ = tx.send(AgentOutcome {
                agent,
                decision,
                waited: began.elapsed(),
            });
        });
    }
    drop(tx);
    let reviewer = tokio::spawn(review(reviewer, Arc::clone(&plans), start, signed));

    let bar = ProgressBar::new(args.agents as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} agents done  {msg}",
        )?
        .progress_chars("=> "),
    );
    let mut results = Vec::with_capacity(args.agents);
    let mut peak = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Some(r) => { results.push(r); bar.inc(1); }
                None => break,
            },
            _ = tick.tick() => {
                let waiting = sink.waiter_count();
                peak = peak.max(waiting);
                bar.set_message(format!("waiting now: {waiting}"));
            }
        }
    }
    bar.finish_and_clear();
    let frames = reviewer.await?;
    summarize(
        &args,
        &sink,
        &plans,
        &results,
        peak,
        frames,
        start.elapsed(),
    )
    .await
}

/// Sends the planned verdicts in 5 ms batches, as protobuf frames or
/// through the gateway; returns how many events it published.
/// With `--signed`, each answered agent's (forgery, signed verdict), made
/// before the run starts so signing never delays the reviewer.
type Signed = Vec<Option<(ApprovalResolved, ApprovalResolved)>>;

fn sign_all(keys: &Keys, plans: &[Plan]) -> Signed {
    plans
        .iter()
        .enumerate()
        .map(|(agent, p)| {
            let (decision, _) = p.verdict?;
            let mut verdict = ApprovalResolved {
                request_id: format!("req-{agent}"),
                decision: decision as i32,
                reviewer: keys.reviewer.id().into(),
                ..Default::default()
            };
            keys.reviewer.sign(&mut verdict);
            Some((
                keys.forgery(verdict.request_id.clone(), agent as u64),
                verdict,
            ))
        })
        .collect()
}

async fn review(
    reviewer: Reviewer,
    plans: Arc<Vec<Plan>>,
    start: Instant,
    signed: Option<Signed>,
) -> u64 {
    let mut due: Vec<(Duration, usize, Decision)> = plans
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.verdict.map(|(d, at)| (at, i, d)))
        .collect();
    due.sort_by_key(|&(at, i, _)| (at, i));
    let mut seq = 0u64;
    let mut next = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    while next < due.len() {
        tick.tick().await;
        let now = start.elapsed();
        let mut batch = Vec::new();
        while let Some(&(at, agent, decision)) = due.get(next) {
            if at > now {
                break;
            }
            seq += 1;
            if seq.is_multiple_of(500) {
                // A policy change now and then shares the stream.
                batch.push(Event::PolicyInvalidated(PolicyInvalidated {
                    agent_id: format!("agent-{agent}"),
                }));
                continue;
            }
            next += 1;
            let mut verdict = ApprovalResolved {
                request_id: format!("req-{agent}"),
                decision: decision as i32,
                reviewer: "demo-reviewer".into(),
                ..Default::default()
            };
            if let Some(Some((forged, genuine))) = signed.as_ref().map(|s| &s[agent]) {
                // The attacker's approval goes first, so a sink that let it
                // in would keep it (S15: the first verdict wins).
                batch.push(Event::ApprovalResolved(forged.clone()));
                seq += 1;
                verdict = genuine.clone();
            }
            batch.push(Event::ApprovalResolved(verdict));
        }
        if let Err(e) = reviewer.publish(batch, seq).await {
            tracing::error!(error = %e, "publishing verdicts failed");
        }
    }
    seq
}

impl Reviewer {
    /// Publishes events; `last_seq` is the sequence number of the last one.
    async fn publish(&self, events: Vec<Event>, last_seq: u64) -> anyhow::Result<()> {
        match self {
            Reviewer::Frames(sink) => {
                let first = last_seq + 1 - events.len() as u64;
                let bytes: Vec<u8> = events
                    .into_iter()
                    .zip(first..)
                    .flat_map(|(event, seq)| {
                        InvalidationEvent {
                            seq,
                            event: Some(event),
                            log_id: 0,
                        }
                        .encode_length_delimited_to_vec()
                    })
                    .collect();
                if !bytes.is_empty() {
                    sink.ingest_bytes(&bytes)?;
                }
            }
            Reviewer::Gateway(client) => {
                let calls = events.into_iter().map(|event| {
                    let mut client = client.clone();
                    async move {
                        match event {
                            Event::ApprovalResolved(r) => client.resolve(r).await.map(drop),
                            Event::PolicyInvalidated(p) => client.invalidate(p).await.map(drop),
                        }
                    }
                });
                for result in futures::future::join_all(calls).await {
                    match result {
                        // A gateway that verifies signatures (the NATS
                        // demo's) refuses the forgeries itself.
                        Err(status) if status.code() == tonic::Code::PermissionDenied => {
                            REFUSED_AT_GATEWAY.fetch_add(1, Ordering::Relaxed);
                        }
                        other => other?,
                    }
                }
            }
        }
        Ok(())
    }
}

async fn summarize(
    args: &DemoArgs,
    sink: &ApprovalSink,
    plans: &[Plan],
    results: &[AgentOutcome],
    peak: usize,
    frames: u64,
    elapsed: Duration,
) -> anyhow::Result<()> {
    let count = |d: Decision| results.iter().filter(|r| r.decision == d).count();
    let mut wrong = 0usize;
    let mut late = 0usize;
    for r in results {
        match (plans[r.agent].verdict, r.decision) {
            (Some((planned, _)), got) if got == planned => {}
            (Some(_), Decision::Pending) => late += 1,
            (None, Decision::Pending) => {}
            _ => wrong += 1,
        }
    }
    let mut waits: Vec<Duration> = results.iter().map(|r| r.waited).collect();
    waits.sort();
    let pct = |p: f64| {
        waits
            .get(((waits.len() as f64 * p) as usize).min(waits.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let stats = sink.stats().await;

    println!(
        "approval-sink demo: {} agents, timeout {} ms, {:.1} s",
        args.agents,
        args.timeout_ms,
        elapsed.as_secs_f64()
    );
    println!("+---------------------------------+-------------+");
    let row = |k: &str, v: String| println!("| {k:<31} | {v:>11} |");
    row("approved", count(Decision::Approved).to_string());
    row("denied", count(Decision::Denied).to_string());
    row("timed out -> Pending", count(Decision::Pending).to_string());
    row(
        "answered before the wait began",
        stats.early_hits.to_string(),
    );
    row("verdict arrived too late", late.to_string());
    row("wrong verdicts", wrong.to_string());
    row(
        "p50 wait",
        format!("{:.1} ms", pct(0.50).as_secs_f64() * 1e3),
    );
    row(
        "p99 wait",
        format!("{:.1} ms", pct(0.99).as_secs_f64() * 1e3),
    );
    row("peak waiters", peak.to_string());
    row("events published (protobuf)", frames.to_string());
    row("policy invalidations", stats.invalidations.to_string());
    if args.signed {
        row(
            "forged/unsigned rejected",
            (stats.unauthenticated + REFUSED_AT_GATEWAY.load(Ordering::Relaxed)).to_string(),
        );
    }
    row(
        "malformed / duplicates",
        format!("{} / {}", stats.malformed, stats.duplicates),
    );
    row("waiters left", sink.waiter_count().to_string());
    row(
        "component size",
        format!("{} KiB", sink.component_size() / 1024),
    );
    println!("+---------------------------------+-------------+");
    if wrong > 0 || results.len() != args.agents || sink.waiter_count() != 0 {
        anyhow::bail!(
            "the demo saw {wrong} wrong verdicts and {} waiters left",
            sink.waiter_count()
        );
    }
    Ok(())
}
