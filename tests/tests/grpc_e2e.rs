//! End to end over real gRPC on loopback: a tonic gateway on 127.0.0.1:0,
//! the sink subscribed through `GrpcSource`. The gateway is shut down and
//! restarted mid-stream while verdicts keep being published; every waiter
//! must get exactly its verdict, none lost, none doubled, and the
//! subscription must resume from `last_seq`.

use approval_gateway::{Gateway, GatewayLog, LogLimits};
use approval_grpc::GrpcSource;
use approval_host::SinkConfig;
use approval_host::sources::PumpConfig;
use approval_host::{ApprovalSink, Decision, Outcome, Verdict};
use approval_proto::{ApprovalResolved, Event};
use approval_tests::events::{decided, invalidation, verdict};
use approval_tests::sinks::{manual_sink, manual_sink_with};
use approval_tests::time::{GUARD, HOUR, eventually};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(log: &Arc<GatewayLog>, addr: SocketAddr) -> Running {
    // The port was ours a moment ago; retry briefly while the OS releases it.
    let mut listener = None;
    for _ in 0..100 {
        match TcpListener::bind(addr).await {
            Ok(l) => {
                listener = Some(l);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let listener = listener.expect("rebind the gateway's port");
    let (stop, stopped) = oneshot::channel::<()>();
    // Not about auth: the token and TLS rules have their own tests.
    let gateway = Gateway::new(Arc::clone(log)).insecure_dev();
    let task = tokio::spawn(async move {
        gateway
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("gateway serves");
    });
    Running { stop, task }
}

impl Running {
    async fn kill(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(GUARD, self.task)
            .await
            .expect("gateway stops")
            .expect("no panic");
    }
}

/// The verdict the tests publish for request `i`.
fn expected(i: usize) -> (String, Decision) {
    (
        format!("req-{i}"),
        if i.is_multiple_of(3) {
            Decision::Denied
        } else {
            Decision::Approved
        },
    )
}

/// An in-memory log retaining `retention` events.
fn memory_log(retention: usize) -> Arc<GatewayLog> {
    GatewayLog::in_memory(LogLimits::retaining(retention)).unwrap()
}

async fn publish(log: &GatewayLog, i: usize) {
    let (request_id, decision) = expected(i);
    log.publish(verdict(&request_id, decision as i32))
        .await
        .unwrap();
}

fn fast_reconnect() -> PumpConfig {
    PumpConfig {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        jitter: 0.2,
        ..PumpConfig::default()
    }
}

async fn invalidate(log: &GatewayLog, agent_id: &str) {
    log.publish(invalidation(agent_id)).await.unwrap();
}

async fn recv(rx: &mut tokio::sync::broadcast::Receiver<String>) -> String {
    tokio::time::timeout(GUARD, rx.recv())
        .await
        .expect("an invalidation arrives")
        .expect("sender alive")
}

async fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_restart_mid_stream_loses_and_doubles_nothing() {
    const N: usize = 3000;
    let log = memory_log(100_000);
    let addr = free_addr().await;
    let mut gateway = Some(start(&log, addr).await);
    let (sink, _clock) = manual_sink(); // virtual time: no wait can time out
    let waits: Vec<_> = (0..N).map(|i| sink.wait(&expected(i).0, HOUR)).collect();
    let source = GrpcSource::new(format!("http://{addr}"));
    let pump = sink.pump_with(source, fast_reconnect());

    for i in 0..N {
        publish(&log, i).await;
        if i.is_multiple_of(50) {
            tokio::task::yield_now().await;
        }
        if i == N / 3 {
            // Let the sink catch up a little, then kill the gateway.
            tokio::time::sleep(Duration::from_millis(50)).await;
            gateway.take().unwrap().kill().await;
        }
        if i == N / 2 {
            gateway = Some(start(&log, addr).await);
        }
    }
    for (i, w) in waits.into_iter().enumerate() {
        let out = tokio::time::timeout(GUARD, w)
            .await
            .expect("every waiter gets a verdict");
        assert_eq!(out, Ok(decided(expected(i).1)), "waiter {i}");
    }
    // Lookups may settle a wait before the stream delivers it: the
    // window shows what the stream delivered.
    let end = log.last_seq();
    eventually(|| async { sink.resume_point().last_seq == end }).await;
    let s = sink.stats().await;
    assert_eq!(s.delivered, N as u64, "each waiter resolved exactly once");
    assert_eq!(s.last_seq, log.last_seq(), "resumed to the end of the log");
    // S15 (issue #12 changed this from "0: nothing left in the cache"):
    // every applied verdict is remembered, each exactly once.
    assert_eq!(
        s.cached_verdicts, N as u32,
        "each verdict remembered once, none applied twice"
    );
    let p = pump.stats();
    assert!(p.connects >= 2, "reconnected after the restart: {p:?}");
    assert_eq!(sink.waiter_count(), 0);
    drop(pump);
    gateway.unwrap().kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribe_resumes_after_last_seq() {
    let log = memory_log(1000);
    let addr = free_addr().await;
    let gateway = start(&log, addr).await;
    for i in 0..10 {
        publish(&log, i).await;
    }
    let (sink, _clock) = manual_sink();
    let pump = sink.pump_with(GrpcSource::new(format!("http://{addr}")), fast_reconnect());
    // Early verdicts: the first ten are replayed into the cache.
    for i in 0..10 {
        let w = sink.wait(&expected(i).0, HOUR);
        eventually(|| async { sink.stats().await.last_seq == 10 }).await;
        assert_eq!(w.await, Ok(decided(expected(i).1)));
    }
    drop(pump);
    gateway.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_invalidations_fan_out_to_two_listeners_over_grpc() {
    let log = memory_log(1000);
    let addr = free_addr().await;
    let gateway = start(&log, addr).await;
    let sink = ApprovalSink::builder().build().unwrap();
    let mut a = sink.subscribe_invalidations();
    let mut b = sink.subscribe_invalidations();
    let pump = sink.pump_with(GrpcSource::new(format!("http://{addr}")), fast_reconnect());
    invalidate(&log, "agent-7").await;
    invalidate(&log, "").await;
    for rx in [&mut a, &mut b] {
        let got = recv(rx).await;
        assert_eq!(got, "agent-7");
        let got = recv(rx).await;
        assert_eq!(got, "");
    }
    drop(pump);
    gateway.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_filter_keeps_other_agents_invalidations_out() {
    let log = memory_log(1000);
    let addr = free_addr().await;
    let gateway = start(&log, addr).await;
    let (sink, _clock) = manual_sink();
    let mut rx = sink.subscribe_invalidations();
    let pump = sink.pump_with(
        GrpcSource::new(format!("http://{addr}")).agent_id("agent-1"),
        fast_reconnect(),
    );
    invalidate(&log, "agent-2").await;
    invalidate(&log, "agent-1").await;
    let got = recv(&mut rx).await;
    assert_eq!(got, "agent-1");
    assert_eq!(sink.stats().await.invalidations, 1);
    drop(pump);
    gateway.kill().await;
}

/// Publishes an approval of `request_id` whose reviewer field pads the
/// event to about `bytes`.
async fn publish_padded(log: &GatewayLog, request_id: &str, bytes: usize) {
    log.publish(Event::ApprovalResolved(ApprovalResolved {
        request_id: request_id.to_string(),
        decision: Decision::Approved as i32,
        reviewer: "r".repeat(bytes),
        ..Default::default()
    }))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_source_honours_the_sinks_frame_limit_and_counts_what_it_skips() {
    let log = memory_log(1000);
    let addr = free_addr().await;
    let gateway = start(&log, addr).await;
    let (sink, _clock) = manual_sink_with(SinkConfig {
        max_frame_bytes: 1 << 20,
        ..SinkConfig::default()
    });
    let big = sink.wait("big", HOUR);
    let huge = sink.wait("huge", HOUR);
    let after = sink.wait("after", HOUR);
    let pump = sink.pump_with(GrpcSource::new(format!("http://{addr}")), fast_reconnect());
    // Over the 64 KiB default, within this sink's 1 MiB: must arrive.
    publish_padded(&log, "big", 100 * 1024).await;
    // Over this sink's limit: skipped by the source, counted, and the
    // stream goes on; its waiter stays pending (never a wrong verdict).
    publish_padded(&log, "huge", 2 << 20).await;
    publish_padded(&log, "after", 10).await;
    for w in [big, after] {
        let out = tokio::time::timeout(GUARD, w).await.expect("delivered");
        assert_eq!(out, Ok(Outcome::Decided(Verdict::Approved)));
    }
    assert_eq!(
        sink.waiter_count(),
        1,
        "only the oversized verdict's waiter"
    );
    assert_eq!(pump.stats().oversized_frames, 1);
    // Lookups may settle a wait before the stream delivers it: the
    // window shows what the stream delivered.
    eventually(|| async { sink.resume_point().last_seq == 3 }).await;
    let s = sink.stats().await;
    assert_eq!((s.oversized_frames, s.delivered), (1, 2));
    assert_eq!(s.last_seq, 3, "the skipped event did not stop the stream");
    drop(huge);
    drop(pump);
    gateway.kill().await;
}

/// S16: the gateway restarts with a *fresh* log (sequence numbers start at
/// 1 again, under a new log id). Nothing of either half may be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_restarted_with_a_fresh_log_loses_no_verdict() {
    const HALF: usize = 1500;
    let old = memory_log(100_000);
    let addr = free_addr().await;
    let gateway = start(&old, addr).await;
    let (sink, _clock) = manual_sink();
    let waits: Vec<_> = (0..2 * HALF)
        .map(|i| sink.wait(expected(i).0, HOUR))
        .collect();
    let pump = sink.pump_with(GrpcSource::new(format!("http://{addr}")), fast_reconnect());
    for i in 0..HALF {
        publish(&old, i).await;
    }
    let old_end = old.last_seq();
    eventually(|| async { sink.resume_point().last_seq == old_end }).await;
    gateway.kill().await;

    let fresh = memory_log(100_000);
    assert_ne!(fresh.log_id(), old.log_id());
    let gateway = start(&fresh, addr).await;
    for i in HALF..2 * HALF {
        publish(&fresh, i).await;
    }
    for (i, w) in waits.into_iter().enumerate() {
        let out = tokio::time::timeout(GUARD, w)
            .await
            .expect("every waiter of either half gets a verdict");
        assert_eq!(out, Ok(decided(expected(i).1)), "waiter {i}");
    }
    // Lookups may settle a wait before the stream delivers it: the
    // window shows what the stream delivered.
    let end = fresh.last_seq();
    eventually(|| async { sink.resume_point().last_seq == end }).await;
    let s = sink.stats().await;
    assert_eq!(s.delivered, 2 * HALF as u64);
    assert_eq!(s.log_changes, 1);
    assert_eq!((s.log_id, s.last_seq), (fresh.log_id(), fresh.last_seq()));
    assert!(pump.stats().connects >= 2);
    drop(pump);
    gateway.kill().await;
}

/// Issue #12: one oversized event in the log (over the old 4 MiB transport
/// cap) used to end every subscriber's stream, again on every reconnect.
/// Now it is skipped inside the stream and counted, and the stream goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_event_in_the_log_is_skipped_without_ending_the_stream() {
    let log = memory_log(1000);
    let addr = free_addr().await;
    let gateway = start(&log, addr).await;
    let (sink, _clock) = manual_sink();
    let huge = sink.wait("huge", HOUR);
    let after = sink.wait("after", HOUR);
    let pump = sink.pump_with(GrpcSource::new(format!("http://{addr}")), fast_reconnect());
    publish_padded(&log, "huge", 5 << 20).await;
    publish_padded(&log, "after", 10).await;
    let out = tokio::time::timeout(GUARD, after).await.expect("delivered");
    assert_eq!(out, Ok(Outcome::Decided(Verdict::Approved)));
    let p = pump.stats();
    assert_eq!(
        (p.oversized_frames, p.connects, p.failures),
        (1, 1, 0),
        "{p:?}"
    );
    // Lookups may settle a wait before the stream delivers it: the
    // window shows what the stream delivered.
    eventually(|| async { sink.resume_point().last_seq == 2 }).await;
    let s = sink.stats().await;
    assert_eq!((s.oversized_frames, s.last_seq), (1, 2));
    assert_eq!(
        sink.waiter_count(),
        1,
        "the unreadable verdict's wait stays pending"
    );
    drop(huge);
    drop(pump);
    gateway.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_refuses_out_of_range_resolves_and_publishes_nothing() {
    use approval_proto::grpc::review_service_client::ReviewServiceClient;
    let log = memory_log(1000);
    let addr = free_addr().await;
    let gateway = start(&log, addr).await;
    let mut client = ReviewServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let resolve = |id: String, reviewer: String, decision: Decision| ApprovalResolved {
        request_id: id,
        decision: decision as i32,
        reviewer,
        ..Default::default()
    };
    let ok = || "r".repeat(256);
    for (what, request) in [
        ("empty id", resolve(String::new(), ok(), Decision::Approved)),
        (
            "257-byte id",
            resolve("x".repeat(257), ok(), Decision::Approved),
        ),
        (
            "257-byte reviewer",
            resolve("a".into(), "r".repeat(257), Decision::Denied),
        ),
        ("PENDING", resolve("a".into(), ok(), Decision::Pending)),
        (
            "UNSPECIFIED",
            resolve("a".into(), ok(), Decision::Unspecified),
        ),
    ] {
        let status = client.resolve(request).await.expect_err(what);
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{what}: {status}"
        );
    }
    let huge = resolve("a".into(), "r".repeat(1 << 20), Decision::Approved);
    assert!(client.resolve(huge).await.is_err(), "a 1 MiB request");
    assert_eq!(log.last_seq(), 0, "nothing was published");
    let fine = resolve("x".repeat(256), ok(), Decision::Approved);
    assert_eq!(client.resolve(fine).await.unwrap().into_inner().seq, 1);
    gateway.kill().await;
}

/// Issue #12: a gateway that accepts TCP and never answers used to hold the
/// pump for ever. It is given up after `idle_timeout` and retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_gateway_is_detected_and_the_pump_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        // Accepts and holds every connection; never reads or writes.
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let (sink, _clock) = manual_sink();
    let pump = sink.pump_with(
        GrpcSource::new(format!("http://{addr}")),
        PumpConfig {
            idle_timeout: Duration::from_millis(300),
            ..fast_reconnect()
        },
    );
    eventually(|| async { pump.stats().failures >= 2 }).await;
    let p = pump.stats();
    assert!(!p.connected && !p.finished, "{p:?}");
    let why = p.last_error.unwrap_or_default();
    assert!(
        why.contains("no answer within"),
        "given up for silence: {why}"
    );
    drop(pump);
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_bounds_subscribers_and_retained_bytes() {
    let log = GatewayLog::in_memory(LogLimits {
        retention: 1000,
        retain_bytes: 2_000,
        max_subscribers: 1,
        ..LogLimits::default()
    })
    .unwrap();
    for i in 0..100 {
        publish(&log, i).await;
    }
    let s = log.stats();
    assert!(s.retained_bytes <= 2_000 && s.retained < 100, "{s:?}");
    assert_eq!(s.dropped, 100 - s.retained as u64);
    let addr = free_addr().await;
    let gateway = start(&log, addr).await;
    // The first subscriber gets the retained tail (the older events were
    // dropped: counted, and a wait on them would end Pending).
    let (first, _c1) = manual_sink();
    let tail = first.wait(expected(99).0, HOUR);
    let p1 = first.pump_with(GrpcSource::new(format!("http://{addr}")), fast_reconnect());
    let out = tokio::time::timeout(GUARD, tail)
        .await
        .expect("the tail is replayed");
    assert_eq!(out, Ok(decided(expected(99).1)));
    eventually(|| async { first.resume_point().last_seq == 100 }).await;
    // A second subscription is refused while the first is open.
    let (second, _c2) = manual_sink();
    let p2 = second.pump_with(GrpcSource::new(format!("http://{addr}")), fast_reconnect());
    // The gateway counts the refusal before the pump hears of it: wait for
    // the pump's side.
    eventually(|| async {
        p2.stats()
            .last_error
            .unwrap_or_default()
            .contains("too many subscribers")
    })
    .await;
    assert!(log.stats().refused_subscribers >= 1);
    assert_eq!(log.stats().subscribers, 1);
    // Once the first goes away, the second gets in.
    drop(p1);
    eventually(|| async { second.stats().await.last_seq == 100 }).await;
    drop(p2);
    gateway.kill().await;
}
