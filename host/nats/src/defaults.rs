//! This crate's defaults against `tests/vectors/host-defaults.json`
//! (SPEC.md §6).

use crate::golden;

#[test]
fn nats_defaults_are_the_pinned_ones() {
    let pinned = golden::read("host-defaults.json");
    let (shared, rust) = (&pinned["shared"], &pinned["rust"]);
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    assert_eq!(
        shared["nats_connect_timeout_ms"].as_u64(),
        Some(ms(crate::source::LOOKUP_CONNECT))
    );
    assert_eq!(
        shared["nats_log_check_ms"].as_u64(),
        Some(ms(crate::LOG_CHECK))
    );
    assert_eq!(
        rust["batch_messages"].as_u64(),
        Some(crate::source::BATCH_MESSAGES as u64)
    );
    assert_eq!(
        rust["nats_publish_attempts"].as_u64(),
        Some(u64::from(crate::publish::PUBLISH_ATTEMPTS))
    );
}
