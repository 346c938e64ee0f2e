//! The single-node gateway's verdict throughput, durable (SQLite, WAL,
//! `synchronous = FULL`, group commit) against `--in-memory` in the same
//! run (issue "Gateway I"): verdicts/s into `GatewayLog::publish` one at a
//! time and from many concurrent reviewers, and through gRPC `Resolve`.
//!
//! `cargo bench -p approval-tests --bench gateway`; the durable log lives
//! in a scratch directory under `target/` (the repository's disk, as a
//! deployment's would be), or under `APPROVAL_BENCH_DIR`.
//! `APPROVAL_BENCH_QUICK=1` for a short smoke run.

use approval_gateway::{Gateway, GatewayLog, LogLimits};
use approval_proto::Event;
use approval_proto::grpc::review_service_client::ReviewServiceClient;
use approval_tests::events::approval;
use approval_tests::time::bench_quick;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// A fresh scratch directory for one durable log.
fn scratch(name: &str) -> PathBuf {
    let base = std::env::var_os("APPROVAL_BENCH_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-gateway"),
        PathBuf::from,
    );
    let dir = base.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Which log a row measures.
#[derive(Clone, Copy)]
enum Kind {
    Durable,
    InMemory,
}

fn open(kind: Kind, name: &str) -> (Arc<GatewayLog>, Option<PathBuf>) {
    match kind {
        Kind::Durable => {
            let dir = scratch(name);
            (
                GatewayLog::open(&dir, LogLimits::default()).expect("open"),
                Some(dir),
            )
        }
        Kind::InMemory => (
            GatewayLog::in_memory(LogLimits::default()).expect("log"),
            None,
        ),
    }
}

/// `total` verdicts published by `reviewers` concurrent tasks; verdicts/s
/// and the commits they took.
async fn publish_rate(kind: Kind, name: &str, reviewers: usize, total: usize) -> (f64, u64) {
    let (log, dir) = open(kind, name);
    let started = Instant::now();
    let tasks: Vec<_> = (0..reviewers)
        .map(|r| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                for i in (r..total).step_by(reviewers) {
                    let event = Event::ApprovalResolved(approval(format!("req-{i}")));
                    log.publish(event).await.expect("published");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("reviewer");
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let commits = log.stats().commits;
    drop(log);
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    (rate, commits)
}

/// `total` verdicts through gRPC `Resolve` from `reviewers` concurrent
/// clients on one channel; verdicts/s.
async fn resolve_rate(kind: Kind, name: &str, reviewers: usize, total: usize) -> f64 {
    let (log, dir) = open(kind, name);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let gateway = Gateway::new(Arc::clone(&log)).insecure_dev();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway.serve(listener, async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Endpoint::from_shared(url)
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let started = Instant::now();
    let tasks: Vec<_> = (0..reviewers)
        .map(|r| {
            let mut client = ReviewServiceClient::new(channel.clone());
            tokio::spawn(async move {
                for i in (r..total).step_by(reviewers) {
                    client
                        .resolve(approval(format!("req-{i}")))
                        .await
                        .expect("resolved");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("reviewer");
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(());
    let _ = server.await;
    drop(log);
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    rate
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let scale = if bench_quick() { 10 } else { 1 };
    println!(
        "| row | durable verdicts/s | in-memory verdicts/s | durable / in-memory | durable commits |"
    );
    println!("|---|---|---|---|---|");
    for (reviewers, total) in [(1, 2_000), (16, 20_000), (256, 50_000)] {
        let total = total / scale;
        let (durable, commits) =
            runtime.block_on(publish_rate(Kind::Durable, "publish", reviewers, total));
        let (memory, _) =
            runtime.block_on(publish_rate(Kind::InMemory, "publish", reviewers, total));
        println!(
            "| GatewayLog::publish, {reviewers} concurrent, {total} verdicts | {durable:.0} | {memory:.0} | {:.3} | {commits} |",
            durable / memory
        );
    }
    for (reviewers, total) in [(1, 2_000), (64, 20_000)] {
        let total = total / scale;
        let durable = runtime.block_on(resolve_rate(Kind::Durable, "resolve", reviewers, total));
        let memory = runtime.block_on(resolve_rate(Kind::InMemory, "resolve", reviewers, total));
        println!(
            "| gRPC Resolve, {reviewers} concurrent, {total} verdicts | {durable:.0} | {memory:.0} | {:.3} | |",
            durable / memory
        );
    }
}
