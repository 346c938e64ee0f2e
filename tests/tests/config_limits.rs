//! S19: no configuration value makes anything panic. Out-of-range sink
//! settings are a typed error naming the field at `build()`; pump settings
//! are clamped (with a warning) and the pump keeps working.

use approval_grpc::GrpcSource;
use approval_host::sources::PumpConfig;
use approval_host::{ApprovalSink, HostError, SinkConfig};
use approval_tests::events::decided;
use approval_tests::sinks::manual_sink_with;
use approval_tests::time::{HOUR, eventually};
use std::time::Duration;

fn build(config: SinkConfig) -> Result<ApprovalSink, HostError> {
    ApprovalSink::builder().config(config).build()
}

fn rejected_field(result: Result<ApprovalSink, HostError>) -> &'static str {
    match result {
        Err(HostError::InvalidConfig { field, .. }) => field,
        Err(other) => panic!("expected InvalidConfig, got {other}"),
        Ok(_) => panic!("expected InvalidConfig, the sink was built"),
    }
}

#[tokio::test]
async fn call_budget_out_of_range_is_a_typed_error_naming_the_field() {
    for budget in [Duration::MAX, Duration::ZERO, Duration::from_secs(3601)] {
        let config = SinkConfig {
            call_budget: budget,
            ..SinkConfig::default()
        };
        assert_eq!(rejected_field(build(config)), "call_budget", "{budget:?}");
    }
}

#[tokio::test]
async fn huge_crash_loop_backoff_is_a_typed_error_naming_the_field() {
    let config = SinkConfig {
        crash_loop_backoff: Duration::MAX,
        ..SinkConfig::default()
    };
    assert_eq!(rejected_field(build(config)), "crash_loop_backoff");
}

#[tokio::test]
async fn guest_limits_out_of_range_are_typed_errors_too() {
    let config = SinkConfig {
        max_waiters: 0,
        ..SinkConfig::default()
    };
    match build(config) {
        Err(HostError::Config(e)) => assert!(e.to_string().contains("max-waiters"), "{e}"),
        Err(other) => panic!("expected Config, got {other}"),
        Ok(_) => panic!("max_waiters 0 was accepted"),
    }
}

#[tokio::test]
async fn extreme_durations_in_range_saturate_and_work() {
    let (sink, clock) = manual_sink_with(SinkConfig {
        verdict_cache_ttl: Duration::MAX,
        max_timeout: Duration::MAX,
        call_budget: approval_host::MAX_CALL_BUDGET,
        crash_loop_window: Duration::MAX,
        crash_loop_backoff: approval_host::MAX_CRASH_LOOP_BACKOFF,
        ..SinkConfig::default()
    });
    sink.deliver("early", approval_host::Decision::Approved)
        .unwrap();
    clock.advance(HOUR * 24 * 365);
    let settled = sink.wait("early", Duration::MAX).await;
    assert_eq!(
        settled,
        Ok(decided(approval_host::Decision::Approved)),
        "a TTL of Duration::MAX keeps the verdict"
    );
    let wait = sink.wait("late", Duration::MAX);
    assert_eq!(sink.waiter_count(), 1);
    drop(wait);
    assert_eq!(sink.waiter_count(), 0);
}

/// A port nothing listens on (bound, then released).
async fn dead_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nan_jitter_pump_keeps_retrying() {
    let (sink, _clock) = manual_sink_with(SinkConfig::default());
    let pump = sink.pump_with(
        GrpcSource::new(dead_endpoint().await),
        PumpConfig {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            jitter: f64::NAN,
            ..PumpConfig::default()
        },
    );
    eventually(|| async { pump.stats().failures >= 3 }).await;
    assert!(!pump.stats().finished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_backoffs_and_jitter_are_clamped_not_a_panic() {
    let (sink, _clock) = manual_sink_with(SinkConfig::default());
    let pump = sink.pump_with(
        GrpcSource::new(dead_endpoint().await),
        PumpConfig {
            initial_backoff: Duration::MAX,
            max_backoff: Duration::MAX,
            jitter: f64::INFINITY,
            idle_timeout: Duration::MAX,
        },
    );
    eventually(|| async { pump.stats().failures >= 1 }).await;
    // The task sleeps its (clamped) backoff instead of dying in `backoff * 2`
    // or `mul_f64`: it has not finished.
    let still_running = tokio::time::timeout(Duration::from_millis(200), pump.finished())
        .await
        .is_err();
    assert!(still_running, "the pump task ended (panicked?)");
}
