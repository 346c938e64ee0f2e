//! NATS JetStream as the shared log (SPEC.md §5.4, §9), against real
//! `nats-server` processes on loopback started and stopped here (see
//! `approval_tests::nats` for where the binary comes from; never skipped).
//!
//! Every wait has a generous guard and every outcome is checked: a wait
//! that ends `Pending` where a verdict was due fails the test. Nothing here
//! asserts a duration.

use approval_gateway::Gateway;
use approval_grpc::GrpcSource;
use approval_host::sources::{Pump, PumpConfig};
use approval_host::{ApprovalSink, Decision, Outcome, SinkConfig, Verdict};
use approval_nats::NatsSource;
use approval_nats::{NatsConfig, VerdictConflict, VerdictLog};
use approval_proto::grpc::review_service_client::ReviewServiceClient;
use approval_proto::{ApprovalResolved, PolicyInvalidated};
use approval_tests::events::decided;
use approval_tests::nats::{Cluster, Node, retry, scratch};
use approval_tests::time::{GUARD, eventually};
use std::time::Duration;
use tonic::Code;

/// Longest a verdict may take to arrive before the test calls it lost.
const WAIT: Duration = Duration::from_secs(60);

fn fast_reconnect() -> PumpConfig {
    PumpConfig {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        ..PumpConfig::default()
    }
}

fn verdict(request_id: &str, decision: Decision) -> ApprovalResolved {
    ApprovalResolved {
        request_id: request_id.to_owned(),
        decision: decision as i32,
        reviewer: "nats-test".into(),
        resolved_at_unix_ms: 1_700_000_000_000,
        ..Default::default()
    }
}

fn decision_of(i: usize) -> Decision {
    if i.is_multiple_of(3) {
        Decision::Denied
    } else {
        Decision::Approved
    }
}

async fn open(config: NatsConfig) -> VerdictLog {
    retry(GUARD, || {
        VerdictLog::open(config.clone(), Duration::from_secs(5))
    })
    .await
}

fn sink_with(config: SinkConfig) -> ApprovalSink {
    ApprovalSink::builder()
        .config(config)
        .build()
        .expect("sink")
}

fn pump(sink: &ApprovalSink, config: &NatsConfig) -> Pump {
    sink.pump_with(NatsSource::new(config.clone()), fast_reconnect())
}

async fn settled(wait: approval_host::Wait) -> Outcome {
    tokio::time::timeout(GUARD, wait)
        .await
        .expect("the wait ends within the guard")
        .expect("the wait is served")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_flow_through_nats_source_and_resume_after_a_server_restart() {
    let dir = scratch("restart");
    let mut node = Node::single(&dir);
    let config = NatsConfig::new(&node.url());
    let log = open(config.clone()).await;
    let sink = sink_with(SinkConfig::default());
    let pump = pump(&sink, &config);

    let first = sink.wait("req-1", WAIT);
    log.publish_verdict(&verdict("req-1", Decision::Approved))
        .await
        .expect("published");
    assert_eq!(settled(first).await, Outcome::Decided(Verdict::Approved));
    // The lookup may have settled it first; the stream follows.
    eventually(|| std::future::ready(sink.resume_point().last_seq == 1)).await;
    let before = sink.resume_point();

    // The server dies and comes back on the same store: the same stream,
    // so the same log id; the sink resumes after last_seq.
    let waits: Vec<_> = (2..=4)
        .map(|i| sink.wait(format!("req-{i}"), WAIT))
        .collect();
    node.kill();
    node.restart();
    let log = open(config.clone()).await;
    for i in 2..=4 {
        let resolved = verdict(&format!("req-{i}"), decision_of(i));
        retry(GUARD, || log.publish_verdict(&resolved)).await;
    }
    for (i, wait) in (2..=4).zip(waits) {
        assert_eq!(settled(wait).await, decided(decision_of(i)));
    }
    // Lookups may settle the waits before the stream delivers them.
    eventually(|| std::future::ready(sink.resume_point().last_seq == 4)).await;
    let stats = sink.stats().await;
    assert_eq!(stats.log_id, before.log_id, "same stream, same log");
    assert_eq!(
        (stats.last_seq, stats.duplicates, stats.log_changes),
        (4, 0, 0)
    );
    assert_eq!(stats.delivered, 4);
    // Who reconnected is not the point: the client usually does on its own
    // (the ordered consumer recreates itself), else the pump reopens.
    drop(pump);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stateless_gateways_share_one_stream_and_the_first_verdict_wins() {
    let dir = scratch("gateways");
    let node = Node::single(&dir);
    let config = NatsConfig::new(&node.url());
    let mut urls = Vec::new();
    for _ in 0..2 {
        let gateway = Gateway::nats(open(config.clone()).await).insecure_dev();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        urls.push(format!("http://{}", listener.local_addr().unwrap()));
        tokio::spawn(gateway.serve(listener, std::future::pending()));
    }
    // The waiter subscribes through gateway B; the reviewer resolves at A.
    let sink = sink_with(SinkConfig::default());
    let _pump = sink.pump_with(GrpcSource::new(urls[1].clone()), fast_reconnect());
    let wait = sink.wait("req-1", WAIT);
    let mut at_a = retry(GUARD, || ReviewServiceClient::connect(urls[0].clone())).await;
    let mut at_b = retry(GUARD, || ReviewServiceClient::connect(urls[1].clone())).await;
    let seq = at_a
        .resolve(verdict("req-1", Decision::Approved))
        .await
        .expect("resolved")
        .into_inner()
        .seq;
    assert_eq!(settled(wait).await, Outcome::Decided(Verdict::Approved));

    // The same decision again, at either gateway: idempotent, same seq.
    let again = at_b
        .resolve(verdict("req-1", Decision::Approved))
        .await
        .expect("same decision succeeds")
        .into_inner();
    assert_eq!(again.seq, seq);
    // The other decision: refused with the verdict that stands.
    let refused = at_b
        .resolve(verdict("req-1", Decision::Denied))
        .await
        .expect_err("a different verdict is refused");
    assert_eq!(refused.code(), Code::AlreadyExists);
    assert!(
        refused
            .message()
            .contains("DECISION_APPROVED already stands for req-1"),
        "{}",
        refused.message()
    );
    // Invalidations go through the log too.
    let mut invalidations = sink.subscribe_invalidations();
    at_a.invalidate(PolicyInvalidated {
        agent_id: "agent-7".into(),
    })
    .await
    .expect("invalidated");
    let agent = tokio::time::timeout(GUARD, invalidations.recv())
        .await
        .expect("within the guard")
        .expect("an invalidation");
    assert_eq!(agent, "agent-7");
    // The stream holds one verdict: nothing but the first was stored.
    let stored = open(config).await.stored_verdict("req-1").await.unwrap();
    assert_eq!(
        stored.map(|(v, s)| (v.decision, s)),
        Some((Decision::Approved as i32, seq))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_sink_gets_a_verdict_published_before_it_existed_even_past_the_cache_ttl() {
    let dir = scratch("durable");
    let node = Node::single(&dir);
    let config = NatsConfig::new(&node.url());
    let log = open(config.clone()).await;
    log.publish_verdict(&verdict("old-1", Decision::Denied))
        .await
        .unwrap();
    log.publish_verdict(&verdict("old-2", Decision::Approved))
        .await
        .unwrap();
    // Older than the new sinks' TTL: the consumer starts after them, so
    // only the lookup can find them.
    let ttl = Duration::from_secs(1);
    tokio::time::sleep(ttl * 2).await;
    for (id, decision) in [("old-1", Decision::Denied), ("old-2", Decision::Approved)] {
        let sink = sink_with(SinkConfig {
            verdict_cache_ttl: ttl,
            ..SinkConfig::default()
        });
        let pump = pump(&sink, &config);
        let wait = sink.wait(id, WAIT);
        assert_eq!(settled(wait).await, decided(decision));
        let stats = sink.stats().await;
        assert_eq!(stats.last_seq, 0, "a lookup never moves last_seq");
        // Counted just after the verdict is applied.
        eventually(|| std::future::ready(pump.stats().lookups_found == 1)).await;
        assert_eq!(pump.stats().lookups, 1);
    }
    // An id nobody decided: the lookup finds nothing; the wait times out.
    let sink = sink_with(SinkConfig::default());
    let pump = pump(&sink, &config);
    let wait = sink.wait("never", Duration::from_millis(500));
    assert_eq!(settled(wait).await, Outcome::TimedOut);
    eventually(|| std::future::ready(pump.stats().lookups == 1)).await;
    assert_eq!(pump.stats().lookups_found, 0);
}

/// Durable lookups do not cost the queue its batching: with a NATS source
/// running, a burst of waits reaches the guest in a handful of calls, and
/// every wait still pending afterwards is looked up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_waits_with_a_nats_source_reaches_the_guest_batched() {
    const BURST: u64 = 200;
    let dir = scratch("batched");
    let node = Node::single(&dir);
    let config = NatsConfig::new(&node.url());
    let log = open(config.clone()).await;
    log.publish_verdict(&verdict("burst-7", Decision::Denied))
        .await
        .unwrap();
    let sink = sink_with(SinkConfig::default());
    let pump = pump(&sink, &config);
    eventually(|| std::future::ready(pump.stats().connected)).await;
    let decided = sink.wait("burst-7", WAIT);
    assert_eq!(settled(decided).await, Outcome::Decided(Verdict::Denied));
    let before = sink.stats().await.guest_calls;
    let waits: Vec<_> = (0..BURST)
        .map(|i| sink.wait(format!("burst-{}", i + 1000), WAIT))
        .collect();
    let calls = sink.stats().await.guest_calls - before;
    assert!(
        calls < BURST / 10,
        "{calls} guest calls for a burst of {BURST} waits"
    );
    eventually(|| std::future::ready(pump.stats().lookups >= BURST)).await;
    eventually(|| std::future::ready(pump.stats().lookups_failed == 0)).await;
    assert_eq!(sink.waiter_count(), BURST as usize, "nobody decided them");
    drop(waits);
    assert_eq!(sink.waiter_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_takes_over_from_a_stopped_one_misses_and_doubles_nothing() {
    let dir = scratch("takeover");
    let node = Node::single(&dir);
    let config = NatsConfig::new(&node.url());
    let log = open(config.clone()).await;
    for i in 0..50 {
        log.publish_verdict(&verdict(&format!("req-{i}"), decision_of(i)))
            .await
            .unwrap();
    }
    let first = sink_with(SinkConfig::default());
    let pump_1 = pump(&first, &config);
    eventually(|| std::future::ready(first.resume_point().last_seq == 50)).await;
    let handed_over = first.resume_point();
    drop(pump_1);
    drop(first);
    for i in 50..80 {
        log.publish_verdict(&verdict(&format!("req-{i}"), decision_of(i)))
            .await
            .unwrap();
    }
    let second = sink_with(SinkConfig::default());
    second.resume_from(handed_over).unwrap();
    let _pump_2 = pump(&second, &config);
    eventually(|| std::future::ready(second.resume_point().last_seq == 80)).await;
    let stats = second.stats().await;
    // Exactly the 30 verdicts after the hand-over, none of the first 50.
    assert_eq!(
        (stats.cached_verdicts, stats.duplicates, stats.log_changes),
        (30, 0, 0)
    );
    assert_eq!(second.resume_point().log_id, handed_over.log_id);
    let late: Vec<_> = (50..80)
        .map(|i| second.wait(format!("req-{i}"), WAIT))
        .collect();
    for (i, wait) in (50..80).zip(late) {
        assert_eq!(settled(wait).await, decided(decision_of(i)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_stream_is_a_new_log_and_the_sink_keeps_working() {
    let dir = scratch("recreate");
    let node = Node::single(&dir);
    let config = NatsConfig::new(&node.url());
    let log = open(config.clone()).await;
    let sink = sink_with(SinkConfig::default());
    let _pump = pump(&sink, &config);
    for i in 0..5 {
        let wait = sink.wait(format!("req-{i}"), WAIT);
        log.publish_verdict(&verdict(&format!("req-{i}"), Decision::Approved))
            .await
            .unwrap();
        assert_eq!(settled(wait).await, Outcome::Decided(Verdict::Approved));
    }
    // A wait may settle by its lookup before the consumer delivers the
    // verdict's own event: the stream catches up to seq 5 soon after.
    eventually(|| std::future::ready(sink.resume_point().last_seq == 5)).await;
    let old = sink.resume_point();
    assert_eq!(old.last_seq, 5);

    log.context().delete_stream(&config.stream).await.unwrap();
    let log = open(config.clone()).await;
    let fresh = log.log_id().await.unwrap();
    assert_ne!(fresh, old.log_id, "a new stream is a new log (S16)");
    // Its sequence starts at 1 again; the sink must not drop it as a
    // duplicate of the old log's seq 1..5.
    let wait = sink.wait("after", WAIT);
    log.publish_verdict(&verdict("after", Decision::Denied))
        .await
        .unwrap();
    assert_eq!(settled(wait).await, Outcome::Decided(Verdict::Denied));
    // The wait may have settled by lookup; the stream must follow: seq 1
    // of the new log applied in a new window, not dropped as a duplicate.
    eventually(|| {
        let at = sink.resume_point();
        std::future::ready((at.log_id, at.last_seq) == (fresh, 1))
    })
    .await;
    let stats = sink.stats().await;
    assert_eq!((stats.log_changes, stats.duplicates), (1, 0));
}

/// Publishes until JetStream acknowledges (a killed node, a leader
/// election); the first verdict per id wins, so a retried publish never
/// stores a second one.
async fn publish_acknowledged(log: &VerdictLog, resolved: &ApprovalResolved) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match log.publish_verdict(resolved).await {
            Ok(_) => return,
            Err(e @ VerdictConflict::Decided { .. }) => panic!("{e}"),
            Err(e) if tokio::time::Instant::now() > deadline => panic!("never acknowledged: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sinks_get_every_verdict_exactly_once_while_a_cluster_node_dies_and_returns() {
    const VERDICTS: usize = 3000;
    let dir = scratch("cluster");
    let mut cluster = Cluster::start(&dir, 3);
    let mut config = NatsConfig::new(&cluster.urls());
    config.replicas = 3;
    // The cluster elects its meta leader first; creating the stream
    // retries until it has.
    let log = open(config.clone()).await;

    // Three sinks, each with its own connection, each waiting on every id.
    let sinks: Vec<ApprovalSink> = (0..3).map(|_| sink_with(SinkConfig::default())).collect();
    let pumps: Vec<Pump> = sinks.iter().map(|s| pump(s, &config)).collect();
    let waiters: Vec<_> = sinks
        .iter()
        .map(|sink| {
            let waits: Vec<_> = (0..VERDICTS)
                .map(|i| sink.wait(format!("req-{i}"), Duration::from_secs(600)))
                .collect();
            tokio::spawn(async move {
                let mut outcomes = Vec::with_capacity(waits.len());
                for wait in waits {
                    outcomes.push(tokio::time::timeout(Duration::from_secs(300), wait).await);
                }
                outcomes
            })
        })
        .collect();

    for i in 0..VERDICTS {
        if i == VERDICTS / 3 {
            cluster.nodes[0].kill();
        }
        if i == 2 * VERDICTS / 3 {
            cluster.nodes[0].restart();
        }
        publish_acknowledged(&log, &verdict(&format!("req-{i}"), decision_of(i))).await;
    }

    for (n, waiter) in waiters.into_iter().enumerate() {
        let outcomes = waiter.await.unwrap();
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let outcome = outcome
                .unwrap_or_else(|_| panic!("sink {n}: req-{i} never settled"))
                .unwrap();
            assert_eq!(outcome, decided(decision_of(i)), "sink {n} req-{i}");
        }
    }
    for sink in &sinks {
        // A wait may have settled by its lookup ahead of the stream: the
        // stream catches up.
        eventually(|| std::future::ready(sink.resume_point().last_seq == VERDICTS as u64)).await;
    }
    for (n, sink) in sinks.iter().enumerate() {
        let stats = sink.stats().await;
        assert_eq!(stats.delivered, VERDICTS as u64, "sink {n}: {stats:?}");
        assert_eq!(
            stats.cached_verdicts as usize, VERDICTS,
            "sink {n}: one verdict per id"
        );
        assert_eq!(stats.conflicts, 0, "sink {n}");
        assert_eq!(stats.last_seq, VERDICTS as u64, "sink {n}");
    }
    // The stream stored each verdict once, retries notwithstanding.
    let mut stream = log.context().get_stream(&config.stream).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, VERDICTS as u64);
    drop(pumps);
}

/// The subject permissions the README shows, read from the README itself:
/// the `gateway` user publishes verdicts; the `sink` user consumes the
/// stream and looks verdicts up, and cannot store a verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_permissions_let_sinks_read_and_only_gateways_publish() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("authorization {\n  users = [")
        .expect("the README shows the server config");
    let end = start + readme[start..].find("\n}\n").expect("its end") + 2;
    let server_config = readme[start..end]
        .replace("$GATEWAY_PASSWORD", "gw-secret")
        .replace("$SINK_PASSWORD", "sink-secret");
    let dir = scratch("permissions");
    let node = Node::single_with_config(&dir, &server_config);
    let gateway = NatsConfig::new(&node.url_as("gateway", "gw-secret"));
    let as_sink = NatsConfig::new(&node.url_as("sink", "sink-secret"));

    let log = open(gateway.clone()).await;
    log.publish_verdict(&verdict("before", Decision::Approved))
        .await
        .expect("the gateway user publishes");
    let sink = sink_with(SinkConfig::default());
    let pump = pump(&sink, &as_sink);
    // A lookup (the verdict predates the wait) and the stream (it follows).
    let before = sink.wait("before", WAIT);
    let after = sink.wait("after", WAIT);
    log.publish_verdict(&verdict("after", Decision::Denied))
        .await
        .unwrap();
    assert_eq!(settled(before).await, Outcome::Decided(Verdict::Approved));
    assert_eq!(settled(after).await, Outcome::Decided(Verdict::Denied));
    assert_eq!(pump.stats().refused, 0, "{:?}", pump.stats());

    // The sink user may read the stream's info, so it can open the log,
    // but its publish is a violation: nothing is stored.
    let forger = VerdictLog::open(as_sink.clone(), Duration::from_secs(1))
        .await
        .expect("the sink user reads the stream");
    let forged = forger
        .publish_verdict(&verdict("forged", Decision::Approved))
        .await;
    assert!(forged.is_err(), "{forged:?}");
    assert!(log.stored_verdict("forged").await.unwrap().is_none());
    // And a wrong password is refused, typed.
    assert_refused(NatsConfig::new(&node.url_as("sink", "guess"))).await;

    // Consumers: the sink user may create only unnamed ones. A durable
    // one is refused by the server on the unnamed subject, a named one is
    // a publish violation, and deleting anyone's consumer is too.
    let wait = Duration::from_secs(5);
    let sink_client = as_sink.connect(wait).await.unwrap();
    let gateway_js = async_nats::jetstream::new(gateway.connect(wait).await.unwrap());
    let stream = gateway_js.get_stream(&gateway.stream).await.unwrap();
    let request = serde_json::json!({
        "stream_name": gateway.stream,
        "config": { "durable_name": "hog", "ack_policy": "explicit" },
    });
    let answer = sink_client
        .request(
            format!("$JS.API.CONSUMER.CREATE.{}", gateway.stream),
            request.to_string().into(),
        )
        .await
        .expect("the server answers the unnamed create subject");
    let answer: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert!(
        answer.get("error").is_some(),
        "a durable is refused: {answer}"
    );
    let sink_js = async_nats::jetstream::new(sink_client);
    let named = tokio::time::timeout(
        GUARD,
        sink_js.create_consumer_on_stream(
            async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("hog".into()),
                ..Default::default()
            },
            &gateway.stream,
        ),
    )
    .await
    .expect("refused within the guard");
    assert!(named.is_err(), "a named consumer is a violation: {named:?}");
    assert!(
        stream.consumer_info("hog").await.is_err(),
        "no hog consumer"
    );
    stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("keep".into()),
            ..Default::default()
        })
        .await
        .expect("the gateway user creates a durable consumer");
    let deleted = tokio::time::timeout(
        GUARD,
        sink_js.delete_consumer_from_stream("keep", &gateway.stream),
    )
    .await
    .expect("refused within the guard");
    assert!(deleted.is_err(), "a delete is a violation");
    assert!(stream.consumer_info("keep").await.is_ok(), "still there");
}

/// What permissions cannot stop (a sink user creating unnamed consumers)
/// the stream's consumer limit bounds: set when a config creates the
/// stream, and enforced by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_bounds_its_consumers() {
    let dir = scratch("max-consumers");
    let node = Node::single(&dir);
    let mut config = NatsConfig::new(&node.url());
    assert_eq!(config.max_consumers, approval_nats::DEFAULT_MAX_CONSUMERS);
    config.max_consumers = 2;
    let _log = open(config.clone()).await;
    let js = async_nats::jetstream::new(config.connect(Duration::from_secs(5)).await.unwrap());
    let mut stream = js.get_stream(&config.stream).await.unwrap();
    assert_eq!(stream.info().await.unwrap().config.max_consumers, 2);
    let pull = async_nats::jetstream::consumer::pull::Config::default;
    let _first = stream.create_consumer(pull()).await.unwrap();
    let _second = stream.create_consumer(pull()).await.unwrap();
    let third = stream.create_consumer(pull()).await;
    let Err(error) = third else {
        panic!("a third consumer is refused");
    };
    let error = error.to_string();
    assert!(error.contains("maximum consumers"), "{error}");
}

/// Opening the log with `config` is refused (credentials), typed.
async fn assert_refused(config: NatsConfig) {
    let refused = VerdictLog::open(config, Duration::from_secs(5)).await;
    assert!(
        matches!(refused, Err(approval_nats::NatsError::Refused { .. })),
        "{:?}",
        refused.err()
    );
}

/// `--nats-token-file`: a server that requires a token serves a client
/// with the right one (whitespace trimmed) and refuses one without it or
/// with a wrong one, typed, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_logs_in_and_a_wrong_or_missing_token_is_refused() {
    let dir = scratch("token");
    std::fs::create_dir_all(&dir).unwrap();
    let node = Node::single_with_config(&dir, "authorization { token: \"s3cret-token\" }\n");
    let with_token = |token: &str| {
        let file = dir.join(format!("token-{}", token.len()));
        std::fs::write(&file, format!("{token}\n")).unwrap();
        let mut config = NatsConfig::new(&node.url());
        config.token_file = Some(file);
        config
    };
    let log = open(with_token("s3cret-token")).await;
    log.publish_verdict(&verdict("t-1", Decision::Approved))
        .await
        .expect("published with the token");
    assert_refused(NatsConfig::new(&node.url())).await;
    assert_refused(with_token("guess")).await;
}

/// A stored message that, with `seq` and `log_id` appended, would be over
/// the sink's frame limit is skipped and counted by the source, and the
/// stream goes on: it never reaches the guest as a fatal oversized frame
/// that every reopen would meet again (one message must not wedge a sink).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_frame_limit_with_its_appended_fields_is_skipped_and_the_stream_goes_on()
{
    let dir = scratch("oversized");
    let node = Node::single(&dir);
    let config = NatsConfig::new(&node.url());
    let log = open(config.clone()).await;
    let max = 1024;
    let padded = |id: &str, pad: usize| ApprovalResolved {
        reviewer: "r".repeat(pad),
        ..verdict(id, Decision::Approved)
    };
    let payload_len = |v: &ApprovalResolved| {
        approval_nats::stored_bytes(approval_proto::Event::ApprovalResolved(v.clone())).len()
    };
    // Just under the limit alone, over it with the appended fields.
    let mut pad = 900;
    while payload_len(&padded("edge", pad)) < max as usize - 5 {
        pad += 1;
    }
    let edge = padded("edge", pad);
    assert!(payload_len(&edge) <= max as usize);
    let sink = sink_with(SinkConfig {
        max_frame_bytes: max,
        ..SinkConfig::default()
    });
    let pump = pump(&sink, &config);
    let after = sink.wait("after", WAIT);
    log.publish_verdict(&edge).await.unwrap();
    log.publish_verdict(&padded("huge", 4 * max as usize))
        .await
        .unwrap();
    log.publish_verdict(&verdict("after", Decision::Denied))
        .await
        .unwrap();
    assert_eq!(settled(after).await, Outcome::Decided(Verdict::Denied));
    // (A wait on "edge" would still get it by lookup: that frame carries
    // two bytes more than the stored message, not twenty.) The stream
    // moves past both skipped messages to seq 3.
    eventually(|| std::future::ready(sink.resume_point().last_seq == 3)).await;
    let pumped = pump.stats();
    assert_eq!(
        (pumped.oversized_frames, pumped.fatal_frames),
        (2, 0),
        "{pumped:?}"
    );
    assert_eq!(sink.stats().await.oversized_frames, 2);
}

/// A stateless gateway's subscribers follow a recreated stream too: their
/// subscription ends when the stream becomes another log, they resubscribe
/// and get the new log's events from seq 1. (The gRPC source's lookups may
/// settle a wait first; the window shows what the stream delivered.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateways_subscribers_follow_a_recreated_stream() {
    let dir = scratch("gateway-recreate");
    let node = Node::single(&dir);
    let config = NatsConfig::new(&node.url());
    let log = open(config.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        Gateway::nats(open(config.clone()).await)
            .insecure_dev()
            .serve(listener, std::future::pending()),
    );
    let sink = sink_with(SinkConfig::default());
    let _pump = sink.pump_with(GrpcSource::new(url), fast_reconnect());
    let first = sink.wait("before", WAIT);
    log.publish_verdict(&verdict("before", Decision::Approved))
        .await
        .unwrap();
    assert_eq!(settled(first).await, Outcome::Decided(Verdict::Approved));
    eventually(|| std::future::ready(sink.resume_point().last_seq == 1)).await;
    let old = sink.resume_point().log_id;

    log.context().delete_stream(&config.stream).await.unwrap();
    let log = open(config.clone()).await;
    let fresh = log.log_id().await.unwrap();
    let after = sink.wait("after", WAIT);
    log.publish_verdict(&verdict("after", Decision::Denied))
        .await
        .unwrap();
    assert_eq!(settled(after).await, Outcome::Decided(Verdict::Denied));
    eventually(|| std::future::ready(sink.resume_point().log_id == fresh)).await;
    assert_ne!(old, fresh);
    let stats = sink.stats().await;
    assert_eq!(
        (stats.log_id, stats.last_seq, stats.log_changes),
        (fresh, 1, 1)
    );
}

/// `publish_verified` against what someone bypassing the gateways can put
/// into the log: a genuine signed verdict copied onto another request's
/// subject is a forgery for that request, and a message that took the
/// message id of (request, APPROVED) does not make an approval "stand"
/// where a denial is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_verdicts_are_checked_for_their_request_and_decision() {
    use approval_host::ReviewerKey;
    use async_nats::jetstream::message::PublishMessage as Publish;
    let dir = scratch("verified");
    let node = Node::single(&dir);
    let config = NatsConfig::new(&node.url());
    let log = open(config.clone()).await;
    let alice = ReviewerKey::generate("alice").unwrap();
    let reviewers = approval_gateway::Reviewers::new(&[alice.trusted()])
        .unwrap()
        .unwrap();
    let check = |stored: &ApprovalResolved| reviewers.check(stored);
    let signed = |id: &str, decision: Decision| {
        let mut resolved = verdict(id, decision);
        alice.sign(&mut resolved);
        resolved
    };
    let js = async_nats::jetstream::new(config.connect(Duration::from_secs(5)).await.unwrap());

    // Alice's approval of "small" copied onto "large"'s subject.
    let (_, small) = approval_nats::subjects::stored_message(
        approval_proto::Event::ApprovalResolved(signed("small", Decision::Approved)),
    );
    js.send_publish(
        approval_nats::resolved_subject("large"),
        Publish::build().payload(small.into()),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    match log
        .publish_verified(&signed("large", Decision::Approved), check)
        .await
    {
        Err(VerdictConflict::Forged { why, .. }) => assert!(why.contains("small"), "{why}"),
        other => panic!("a copied verdict is a forgery for large: {other:?}"),
    }

    // A genuine denial stands for "wire"; a forger's message takes the
    // message id of (wire, APPROVED) on another subject.
    log.publish_verdict(&signed("wire", Decision::Denied))
        .await
        .unwrap();
    let (_, junk) = approval_nats::subjects::stored_message(
        approval_proto::Event::PolicyInvalidated(PolicyInvalidated::default()),
    );
    js.send_publish(
        approval_nats::invalidated_subject("x"),
        Publish::build()
            .payload(junk.into())
            .message_id(approval_nats::subjects::message_id(
                "wire",
                Decision::Approved as i32,
            )),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    match log
        .publish_verified(&signed("wire", Decision::Approved), check)
        .await
    {
        Err(VerdictConflict::Decided { stored, .. }) => {
            assert_eq!(stored.decision, Decision::Denied as i32)
        }
        other => panic!("the denial stands: {other:?}"),
    }
}
