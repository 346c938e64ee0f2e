//! The event path across machines (issue #14): a verdict's end-to-end
//! latency from `Resolve` at a gateway to the waiting agent, through the
//! in-memory gateway (gRPC) and through NATS JetStream (a stateless gateway
//! publishing to the stream, sinks consuming it with `NatsSource`), with 1
//! and 3 sinks; and the verdict throughput into one sink, published
//! beforehand, through `GrpcSource` from the in-memory gateway and through
//! `NatsSource`, in the same run.
//!
//! `cargo bench -p approval-tests --bench nats` (starts its own
//! `nats-server` on loopback, from PATH or fetched as the tests do).
//! `APPROVAL_BENCH_QUICK=1` for a short smoke run;
//! `NATS_BENCH_THROUGHPUT_ONLY=1` for the throughput rows alone.

use approval_gateway::{Gateway, GatewayLog, LogLimits};
use approval_grpc::GrpcSource;
use approval_host::sources::Pump;
use approval_host::{ApprovalSink, Outcome, ResumePoint, SinkConfig, Verdict};
use approval_nats::NatsSource;
use approval_nats::{NatsConfig, VerdictLog};
use approval_proto::Event;
use approval_proto::grpc::review_service_client::ReviewServiceClient;
use approval_tests::events::approval;
use approval_tests::nats::{Node, scratch};
use approval_tests::time::bench_quick;
use async_nats::jetstream::message::PublishMessage;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Serves `gateway` on a loopback port; returns its URL.
async fn serve(gateway: Gateway) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(gateway.serve(listener, std::future::pending()));
    url
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// `rounds` verdicts, one at a time: every sink waits on the id, the
/// reviewer calls `Resolve`, and each sink's wait is timed from the call.
async fn latency(
    client: &mut ReviewServiceClient<Channel>,
    sinks: &[ApprovalSink],
    prefix: &str,
    rounds: usize,
) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(rounds * sinks.len());
    for i in 0..rounds {
        let id = format!("{prefix}-{i}");
        let waits: Vec<_> = sinks
            .iter()
            .map(|s| s.wait(&id, Duration::from_secs(30)))
            .collect();
        let start = Instant::now();
        let timed: Vec<_> = waits
            .into_iter()
            .map(|w| {
                tokio::spawn(async move {
                    let outcome = w.await;
                    (outcome, Instant::now())
                })
            })
            .collect();
        client.resolve(approval(id.clone())).await.expect("resolve");
        for t in timed {
            let (outcome, at) = t.await.expect("task");
            assert_eq!(
                outcome.expect("served"),
                Outcome::Decided(Verdict::Approved)
            );
            samples.push(at - start);
        }
    }
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

/// How fast one new sink consumes `n` verdicts already in the log.
async fn drain(sink: &ApprovalSink, _pump: &Pump, n: u64) -> f64 {
    let start = Instant::now();
    while sink.resume_point().last_seq < n {
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn sink() -> ApprovalSink {
    ApprovalSink::builder()
        .config(SinkConfig::default())
        .build()
        .expect("sink")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = if bench_quick() { 50 } else { 1000 };
    let volume: u64 = if bench_quick() { 20_000 } else { 200_000 };
    let dir = scratch("bench");
    let node = Node::single(&dir);
    let config = NatsConfig::new(&node.url());

    println!("## NATS bench: {rounds} verdicts for latency, {volume} for throughput");
    println!("| row | value |");
    println!("|---|---|");

    // Latency, in-memory gateway (gRPC both ways).
    let memory_log = GatewayLog::in_memory(LogLimits {
        retention: volume as usize + 10,
        ..LogLimits::default()
    })
    .expect("an in-memory log");
    // Loopback, no tokens: the bench measures the transport, not auth.
    let memory_url = serve(Gateway::new(memory_log.clone()).insecure_dev()).await;
    let nats_url = serve(
        Gateway::nats(
            VerdictLog::open(config.clone(), Duration::from_secs(10))
                .await
                .expect("open the log"),
        )
        .insecure_dev(),
    )
    .await;
    // `NATS_BENCH_THROUGHPUT_ONLY=1`: skip the latency rows (profiling).
    let latency_rows = std::env::var_os("NATS_BENCH_THROUGHPUT_ONLY").is_none();
    for sinks_n in [1, 3].into_iter().filter(|_| latency_rows) {
        for (name, url) in [("in-memory gateway", &memory_url), ("JetStream", &nats_url)] {
            let sinks: Vec<_> = (0..sinks_n).map(|_| sink()).collect();
            let pumps: Vec<_> = sinks
                .iter()
                .map(|s| {
                    if name == "JetStream" {
                        s.pump(NatsSource::new(config.clone()))
                    } else {
                        s.pump(GrpcSource::new(url.clone()))
                    }
                })
                .collect();
            while pumps.iter().any(|p| p.stats().connects == 0) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut client = ReviewServiceClient::connect(url.clone())
                .await
                .expect("client");
            let prefix = format!("lat-{sinks_n}-{}", name.len());
            // Warm up the connections and the guest.
            latency(&mut client, &sinks, &format!("{prefix}-warm"), 20).await;
            let (p50, p99) = latency(&mut client, &sinks, &prefix, rounds).await;
            println!(
                "| latency Resolve -> wait resolved, {name}, {sinks_n} sink(s) | p50 {:.0} µs, p99 {:.0} µs |",
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6
            );
        }
    }

    // Throughput: `volume` verdicts published beforehand, then one new sink
    // reads them all.
    let base = memory_log.last_seq();
    for i in 0..volume {
        memory_log
            .publish(Event::ApprovalResolved(approval(format!("thr-{i}"))))
            .await
            .expect("published");
    }
    let grpc_sink = sink();
    let grpc_pump = grpc_sink.pump(GrpcSource::new(memory_url.clone()));
    let grpc_rate = drain(&grpc_sink, &grpc_pump, base + volume).await;
    let grpc_chunks = grpc_pump.stats().chunks;
    drop(grpc_pump);

    let log = VerdictLog::open(config.clone(), Duration::from_secs(10))
        .await
        .expect("open the log");
    let js = log.context();
    let start_seq = {
        let mut stream = js.get_stream(&config.stream).await.expect("stream");
        stream.info().await.expect("info").state.last_sequence
    };
    let published = Instant::now();
    let mut acks = Vec::with_capacity(1024);
    for i in 0..volume {
        let payload =
            approval_nats::stored_bytes(Event::ApprovalResolved(approval(format!("thr-{i}"))));
        let subject = approval_nats::resolved_subject(&format!("thr-{i}"));
        let ack = js
            .send_publish(subject, PublishMessage::build().payload(payload.into()))
            .await
            .expect("publish");
        acks.push(ack);
        if acks.len() == 1024 {
            for ack in acks.drain(..) {
                ack.await.expect("ack");
            }
        }
    }
    for ack in acks.drain(..) {
        ack.await.expect("ack");
    }
    let publish_rate = volume as f64 / published.elapsed().as_secs_f64();
    let nats_sink = sink();
    // Told the log's id, a new sink reads it from the start of our batch.
    nats_sink
        .resume_from(ResumePoint {
            log_id: log.log_id().await.expect("log id"),
            last_seq: start_seq,
        })
        .expect("resume point");
    let nats_pump = nats_sink.pump(NatsSource::new(config.clone()));
    let nats_rate = drain(&nats_sink, &nats_pump, start_seq + volume).await;
    let stats = nats_sink.stats().await;
    assert_eq!(stats.malformed + stats.duplicates, 0, "{stats:?}");
    let per_chunk = |p: &Pump| volume as f64 / p.stats().chunks.max(1) as f64;

    println!(
        "| throughput into one sink, GrpcSource from the in-memory gateway | {:.0} verdicts/s ({:.0} per guest call) |",
        grpc_rate,
        volume as f64 / grpc_chunks.max(1) as f64
    );
    println!(
        "| throughput into one sink, NatsSource (JetStream) | {:.0} verdicts/s ({:.2}x of gRPC; {:.0} per guest call) |",
        nats_rate,
        nats_rate / grpc_rate,
        per_chunk(&nats_pump)
    );
    println!(
        "| (publishing them to JetStream beforehand, pipelined) | {:.0} verdicts/s |",
        publish_rate
    );
}
