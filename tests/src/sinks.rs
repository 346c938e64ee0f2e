//! Sinks on a `ManualClock`, and proptest's case count.

use approval_host::{ApprovalSink, ManualClock, SinkConfig};

/// A sink on the embedded component with virtual time.
pub fn manual_sink() -> (ApprovalSink, ManualClock) {
    manual_sink_with(SinkConfig::default())
}

/// A sink on the embedded component with virtual time and `config`.
pub fn manual_sink_with(config: SinkConfig) -> (ApprovalSink, ManualClock) {
    let clock = ManualClock::new();
    let sink = ApprovalSink::builder()
        .clock(clock.clone())
        .config(config)
        .build()
        .expect("the embedded component builds");
    (sink, clock)
}

/// Cases per proptest property: `PROPTEST_CASES` from the environment, else
/// `default`.
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
