//! Side-by-side benchmarks: the component through the host adapter against
//! the native original (`native/original.rs`), on the same workloads, in one
//! run. Prints a Markdown table of absolute figures and ratios to native.
//!
//! `cargo bench -p approval-tests --bench sink` (set `APPROVAL_BENCH_QUICK=1`
//! for a short smoke run). Numbers are for BENCHMARKS.md, never asserted.

#[path = "parts/async_face.rs"]
mod async_face;
#[path = "parts/calls.rs"]
mod calls;
#[path = "parts/cold_start.rs"]
mod cold_start;
#[path = "native/original.rs"]
mod original;

use approval_host::component::REGISTRY_COMPONENT;
use approval_host::{ApprovalSink, Decision, InvalidationSink, ReviewerKey, SinkConfig};
use approval_tests::events::{approvals, frame, resolved_event, signed, stream, verdict_event};
use approval_tests::time::bench_quick;
use original::NativeSink;
use std::time::{Duration, Instant};

struct Row {
    name: String,
    native: Option<f64>,
    ours: f64,
    unit: &'static str,
    /// Lower is better (time, bytes) or higher (rates).
    lower_is_better: bool,
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn big_sink() -> ApprovalSink {
    ApprovalSink::builder()
        .config(SinkConfig {
            max_waiters: 2_000_000,
            ..SinkConfig::default()
        })
        .build()
        .expect("sink")
}

async fn round_trip(n: usize) -> (f64, f64) {
    round_trip_on(&NativeSink::new(), &ApprovalSink::new(), n, "req").await
}

/// The round trip through the path users call (`wait_for_approval` and
/// the `InvalidationSink` trait), on given sinks, with ids `{prefix}-{i}`.
async fn round_trip_on(
    native: &NativeSink,
    ours: &ApprovalSink,
    n: usize,
    prefix: &str,
) -> (f64, f64) {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let t = Instant::now();
    for id in &ids {
        let f = native.wait_for_approval(id, Duration::from_secs(30));
        native.on_approval_resolved(id, Decision::Approved);
        assert_eq!(f.await, Decision::Approved);
    }
    let native_ns = t.elapsed().as_nanos() as f64 / n as f64;
    let t = Instant::now();
    for id in &ids {
        let f = ours.wait_for_approval(id, Duration::from_secs(30));
        ours.on_approval_resolved(id, Decision::Approved);
        assert_eq!(f.await, Decision::Approved);
    }
    (native_ns, t.elapsed().as_nanos() as f64 / n as f64)
}

async fn memory_per_waiter(n: usize) -> (f64, f64) {
    let ids: Vec<String> = (0..n).map(|i| format!("req-{i:08}")).collect();
    let native = NativeSink::new();
    let before = rss_bytes();
    let futs: Vec<_> = ids
        .iter()
        .map(|id| native.wait_for_approval(id, Duration::from_secs(3600)))
        .collect();
    let native_b = (rss_bytes().saturating_sub(before)) as f64 / n as f64;
    drop(futs);
    drop(native);
    let ours = big_sink();
    let before = rss_bytes();
    let futs: Vec<_> = ids
        .iter()
        .map(|id| ours.wait_for_approval(id, Duration::from_secs(3600)))
        .collect();
    let ours_b = (rss_bytes().saturating_sub(before)) as f64 / n as f64;
    drop(futs);
    (native_b, ours_b)
}

async fn storm(n: usize) -> (f64, f64) {
    let native = NativeSink::new();
    let t = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(native.wait_for_approval(&format!("req-{i}"), Duration::from_millis(10)))
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Decision::Pending);
    }
    let native_ms = t.elapsed().as_secs_f64() * 1e3;
    let ours = big_sink();
    let t = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(ours.wait_for_approval(format!("req-{i}"), Duration::from_millis(10)))
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Decision::Pending);
    }
    assert_eq!(ours.waiter_count(), 0);
    (native_ms, t.elapsed().as_secs_f64() * 1e3)
}

/// `n` verdict frames with seqs from `seq0`, each on its own request id
/// `req-<seq>` (a gateway sends one verdict per approval request).
fn frames(n: usize, seq0: u64) -> Vec<u8> {
    approvals(n, seq0, seq0 as usize)
}

/// Frames per second through `ingest-frames`, in chunks of `chunk` frames;
/// with `waiters`, each frame resolves one pending wait.
async fn ingest(total: usize, chunk: usize, waiters: bool) -> f64 {
    let sink = ApprovalSink::builder()
        .config(SinkConfig {
            max_waiters: 2_000_000,
            verdict_cache_capacity: 10_000,
            ..SinkConfig::default()
        })
        .build()
        .expect("sink");
    let rounds = total / chunk;
    let mut elapsed = Duration::ZERO;
    for round in 0..rounds {
        let seq0 = (round * chunk) as u64 + 1;
        let bytes = frames(chunk, seq0);
        let waits: Vec<_> = if waiters {
            (0..chunk as u64)
                .map(|i| sink.wait(format!("req-{}", seq0 + i), Duration::from_secs(3600)))
                .collect()
        } else {
            Vec::new()
        };
        // Registrations are queued (one guest call per 64 KiB of them); the
        // count flushes the rest, so the timing below is the ingest alone.
        assert_eq!(sink.waiter_count(), waits.len());
        let t = Instant::now();
        let report = sink.ingest_bytes(&bytes).expect("ingest");
        elapsed += t.elapsed();
        assert_eq!(report.events as usize, chunk);
        for w in waits {
            assert!(w.await.is_ok());
        }
    }
    (rounds * chunk) as f64 / elapsed.as_secs_f64()
}

impl Row {
    /// A time or size measured against the native original (lower is better).
    fn vs_native(name: impl Into<String>, native: f64, ours: f64, unit: &'static str) -> Row {
        Row {
            name: name.into(),
            native: Some(native),
            ours,
            unit,
            lower_is_better: true,
        }
    }

    /// A figure the original has no counterpart for.
    fn ours(name: impl Into<String>, ours: f64, unit: &'static str) -> Row {
        Row {
            name: name.into(),
            native: None,
            ours,
            unit,
            lower_is_better: unit != "frames/s",
        }
    }
}

/// The round trip through the adapter, then layer by layer on a bare
/// instance (no adapter), then through the async face.
async fn round_trip_rows(q: bool) -> Vec<Row> {
    let n = if q { 10_000 } else { 200_000 };
    let (native, ours) = round_trip(n).await;
    let mut rows = vec![Row::vs_native(
        format!("round trip wait→deliver→resolved ({n} sequential)"),
        native,
        ours,
        "ns",
    )];
    let component =
        |e: &wasmtime::Engine| wasmtime::component::Component::new(e, REGISTRY_COMPONENT).unwrap();
    for epochs in [true, false] {
        let engine = calls::engine(epochs);
        let mut bare = calls::Bare::new(&engine, &component(&engine));
        let on = if epochs { "epochs on" } else { "epochs off" };
        rows.push(Row::ours(
            format!("  bare call: cancel(u64) -> bool, {on}"),
            bare.empty_call(n as u64),
            "ns",
        ));
        rows.push(Row::vs_native(
            format!("  bare calls: register + resolve, {on}"),
            native,
            bare.register_resolve(n as u64),
            "ns",
        ));
        rows.push(Row::ours(
            format!("  bare call: apply(empty list), {on}"),
            bare.apply_empty(n as u64),
            "ns",
        ));
        rows.push(Row::vs_native(
            format!("  bare call: apply([register, resolve]), {on}"),
            native,
            bare.apply_round_trip(n as u64),
            "ns",
        ));
    }
    let m = if q { 2_000 } else { 20_000 };
    rows.push(Row::vs_native(
        format!("async face: round trip wait-for-approval→resolve ({m} sequential)"),
        native,
        async_face::round_trip(m).await,
        "ns",
    ));
    rows.push(Row::ours(
        format!("  async face: one call_concurrent (stats), {m} sequential"),
        async_face::concurrent_call_floor(m).await,
        "ns",
    ));
    rows
}

/// Runs `f` on a current-thread tokio runtime of its own (the original's
/// own test shape), in a thread of its own since `main` runs in another
/// runtime.
fn on_current_thread<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(f())
    })
    .join()
    .expect("bench thread")
}

/// The path users call on a current-thread runtime: the round trip through
/// `wait_for_approval` + `on_approval_resolved`, then the same through
/// `wait` + `deliver` (no wrapper future, no trait), then again after a
/// burst of 100k waiters grew the tables; and 100k `wait_for_approval`
/// futures spawned as tasks timing out together.
fn current_thread_rows(q: bool) -> Vec<Row> {
    let n = if q { 10_000 } else { 200_000 };
    let burst = if q { 10_000 } else { 100_000 };
    let mut rows = Vec::new();
    let (native, ours) = on_current_thread(move || Box::pin(round_trip(n)));
    rows.push(Row::vs_native(
        format!("current-thread rt: round trip wait_for_approval→on_approval_resolved ({n})"),
        native,
        ours,
        "ns",
    ));
    let direct = on_current_thread(move || {
        Box::pin(async move {
            let sink = ApprovalSink::new();
            let t = Instant::now();
            for i in 0..n {
                let id = format!("req-{i}");
                let f = sink.wait(&id, Duration::from_secs(30));
                sink.deliver(&id, Decision::Approved).expect("delivered");
                assert!(f.await.is_ok());
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
    });
    rows.push(Row::vs_native(
        format!("current-thread rt: round trip wait→deliver ({n})"),
        native,
        direct,
        "ns",
    ));
    let (native_grown, ours_grown) = on_current_thread(move || {
        Box::pin(async move {
            let native = NativeSink::new();
            let ours = big_sink();
            // 100k waiters registered and resolved: the tables grew.
            let futs: Vec<_> = (0..burst)
                .map(|i| ours.wait_for_approval(format!("burst-{i}"), Duration::from_secs(30)))
                .collect();
            let native_futs: Vec<_> = (0..burst)
                .map(|i| native.wait_for_approval(format!("burst-{i}"), Duration::from_secs(30)))
                .collect();
            for i in 0..burst {
                ours.on_approval_resolved(&format!("burst-{i}"), Decision::Approved);
                native.on_approval_resolved(&format!("burst-{i}"), Decision::Approved);
            }
            futures::future::join_all(futs).await;
            futures::future::join_all(native_futs).await;
            round_trip_on(&native, &ours, n, "after").await
        })
    });
    rows.push(Row::vs_native(
        format!("current-thread rt: the same after a {burst}-waiter burst"),
        native_grown,
        ours_grown,
        "ns",
    ));
    let (native_storm, ours_storm) = on_current_thread(move || Box::pin(storm(burst)));
    rows.push(Row::vs_native(
        format!("current-thread rt: {burst} wait_for_approval tasks × 10 ms timeout storm"),
        native_storm,
        ours_storm,
        "ms",
    ));
    rows
}

/// Memory per pending waiter (RSS delta).
async fn memory_rows(q: bool) -> Vec<Row> {
    let sizes = if q {
        vec![100_000]
    } else {
        vec![100_000, 1_000_000]
    };
    let mut rows = Vec::new();
    for n in sizes {
        let (native, ours) = memory_per_waiter(n).await;
        rows.push(Row::vs_native(
            format!("memory per pending waiter at {n} (RSS delta)"),
            native,
            ours,
            "B",
        ));
    }
    rows
}

/// Many waits timing out at once, through the adapter and the async face.
/// ms for the part of a storm no registry design avoids: `n` spawned
/// tokio tasks, each woken once by its own oneshot, all sent by one timer
/// 10 ms after the start (what our sink does, minus the registry).
async fn storm_floor(n: usize) -> f64 {
    let t = Instant::now();
    let (senders, tasks): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| {
            let (tx, rx) = tokio::sync::oneshot::channel::<Decision>();
            (
                tx,
                tokio::spawn(async move { rx.await.unwrap_or(Decision::Pending) }),
            )
        })
        .unzip();
    tokio::time::sleep(Duration::from_millis(10).saturating_sub(t.elapsed())).await;
    for tx in senders {
        let _ = tx.send(Decision::Pending);
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), Decision::Pending);
    }
    t.elapsed().as_secs_f64() * 1e3
}

async fn storm_rows(q: bool) -> Vec<Row> {
    let n = if q { 10_000 } else { 100_000 };
    let (native, ours) = storm(n).await;
    vec![
        Row::vs_native(
            format!("{n} × 10 ms timeout storm, until all resolved"),
            native,
            ours,
            "ms",
        ),
        Row::vs_native(
            format!("  floor: {n} tokio tasks woken by oneshots one timer fires at 10 ms"),
            native,
            storm_floor(n).await,
            "ms",
        ),
        Row::vs_native(
            format!("async face: {n} concurrent waits × 10 ms timeout storm"),
            native,
            async_face::storm(n as u64).await,
            "ms",
        ),
    ]
}

/// Frames per second into the guest, batched and as an async stream.
async fn ingest_rows(q: bool) -> Vec<Row> {
    let total = if q { 100_000 } else { 1_000_000 };
    let count = if q { 10_000 } else { 100_000 };
    let bytes = frames(count, 1);
    vec![
        Row::ours(
            "ingest, no waiters (verdicts cached; 10k frames/call)",
            ingest(total, 10_000, false).await,
            "frames/s",
        ),
        Row::ours(
            "ingest, each frame resolves a waiter (10k frames/call)",
            ingest(total, 10_000, true).await,
            "frames/s",
        ),
        Row::ours(
            "async face: ingest(stream<u8>), no waiters (64 KiB writes)",
            async_face::ingest_stream(&bytes, count as u64, false).await,
            "frames/s",
        ),
        Row::ours(
            "async face: ingest(stream<u8>), each frame resolves a waiter (64 KiB writes)",
            async_face::ingest_stream(&bytes, count as u64, true).await,
            "frames/s",
        ),
    ]
}

/// S17: signed verdicts verified inside the guest. The signatures are made
/// before the clock starts; what is timed is the guest's work (and the
/// host's chunking of the stream to fit the call budget).
async fn signed_rows(q: bool) -> Vec<Row> {
    let alice = ReviewerKey::generate("alice").expect("key");
    let trusting = || {
        ApprovalSink::builder()
            .trusted_key(alice.trusted())
            .build()
            .expect("sink")
    };
    // A fresh sink replaying a busy minute: 10,000 signed verdicts.
    let n = if q { 2_000 } else { 10_000 };
    let events: Vec<_> = (1..=n as u64)
        .map(|seq| {
            resolved_event(
                seq,
                signed(&alice, &format!("req-{seq}"), Decision::Approved),
            )
        })
        .collect();
    let bytes = stream(&events);
    let sink = trusting();
    let t = Instant::now();
    let report = sink.ingest_bytes(&bytes).expect("ingest");
    let ingest = t.elapsed();
    assert_eq!(report.events as usize, n);
    // The round trip with keys: wait, push the signed frame, resolved.
    let m = if q { 500 } else { 2_000 };
    let frames: Vec<_> = (0..m)
        .map(|i| {
            frame(&resolved_event(
                0,
                signed(&alice, &format!("rt-{i}"), Decision::Approved),
            ))
        })
        .collect();
    let sink = trusting();
    let t = Instant::now();
    for (i, f) in frames.iter().enumerate() {
        let wait = sink.wait_for_approval(format!("rt-{i}"), Duration::from_secs(30));
        sink.push_frame(f).expect("signed");
        assert_eq!(wait.await, Decision::Approved);
    }
    let keyed_rt = t.elapsed().as_nanos() as f64 / m as f64;
    // The same round trip without keys, unsigned frames, same run.
    let plain: Vec<_> = (0..m)
        .map(|i| {
            frame(&verdict_event(
                0,
                &format!("rt-{i}"),
                Decision::Approved as i32,
            ))
        })
        .collect();
    let sink = ApprovalSink::new();
    let t = Instant::now();
    for (i, f) in plain.iter().enumerate() {
        let wait = sink.wait_for_approval(format!("rt-{i}"), Duration::from_secs(30));
        sink.push_frame(f).expect("unsigned");
        assert_eq!(wait.await, Decision::Approved);
    }
    let plain_rt = t.elapsed().as_nanos() as f64 / m as f64;
    vec![
        Row::ours(
            format!(
                "signed: verifications/s through the guest ({n} signed verdicts, one ingest_bytes)"
            ),
            n as f64 / ingest.as_secs_f64(),
            "frames/s",
        ),
        Row::ours(
            format!("signed: time to ingest {n} signed verdicts (a fresh sink's replay)"),
            ingest.as_secs_f64() * 1e3,
            "ms",
        ),
        Row::ours(
            format!("signed: round trip wait→push signed frame→resolved, keys configured ({m})"),
            keyed_rt,
            "ns",
        ),
        Row::ours(
            format!("signed: the same round trip, no keys, unsigned frame ({m})"),
            plain_rt,
            "ns",
        ),
        Row::ours(
            "component size (approval-registry, bytes)",
            REGISTRY_COMPONENT.len() as f64,
            "B",
        ),
    ]
}

/// From component bytes to a sink that serves.
fn cold_start_rows(q: bool) -> Vec<Row> {
    let k = if q { 20 } else { 200 };
    vec![
        Row::ours(
            "cold start: compile from bytes (Cranelift) + link",
            cold_start::compile(if q { 2 } else { 5 }),
            "µs",
        ),
        Row::ours(
            "cold start: load precompiled artifact + link",
            cold_start::from_artifact(k),
            "µs",
        ),
        Row::ours(
            "cold start: instantiate from InstancePre (on-demand)",
            cold_start::instantiate_pre(k, false),
            "µs",
        ),
        Row::ours(
            "cold start: instantiate from InstancePre (pooling)",
            cold_start::instantiate_pre(k, true),
            "µs",
        ),
        Row::ours(
            "cold start: new sink (instantiate + configure + timer task)",
            cold_start::new_sink(k),
            "µs",
        ),
    ]
}

fn print_table(rows: &[Row]) {
    println!("| workload | native original | approval-sink (component) | ratio to native |");
    println!("|---|---|---|---|");
    for r in rows {
        let fmt = |v: f64| {
            if v >= 1000.0 {
                format!("{:.0} {}", v, r.unit)
            } else {
                format!("{:.2} {}", v, r.unit)
            }
        };
        let (native, ratio) = match r.native {
            Some(n) if n > 0.0 => {
                let ratio = if r.lower_is_better {
                    r.ours / n
                } else {
                    n / r.ours
                };
                (fmt(n), format!("{ratio:.2}x"))
            }
            _ => ("—".to_string(), "—".to_string()),
        };
        println!("| {} | {} | {} | {} |", r.name, native, fmt(r.ours), ratio);
    }
}

#[tokio::main]
async fn main() {
    let q = bench_quick();
    let mut rows = Vec::new();
    rows.extend(round_trip_rows(q).await);
    rows.extend(current_thread_rows(q));
    rows.extend(memory_rows(q).await);
    rows.extend(storm_rows(q).await);
    rows.extend(ingest_rows(q).await);
    rows.extend(signed_rows(q).await);
    rows.extend(cold_start_rows(q));
    print_table(&rows);
}
