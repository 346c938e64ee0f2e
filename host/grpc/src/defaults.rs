//! This crate's defaults against `tests/vectors/host-defaults.json`
//! (SPEC.md §6).

use crate::golden;

#[test]
fn grpc_defaults_are_the_pinned_ones() {
    let pinned = golden::read("host-defaults.json");
    let (shared, rust) = (&pinned["shared"], &pinned["rust"]);
    assert_eq!(
        shared["transport_max_message_bytes"].as_u64(),
        Some(crate::DEFAULT_MAX_MESSAGE_BYTES as u64)
    );
    assert_eq!(
        rust["batch_messages"].as_u64(),
        Some(crate::source::BATCH_MESSAGES as u64)
    );
    assert_eq!(
        rust["client_connect_timeout_ms"].as_u64(),
        Some(crate::review::CONNECT_TIMEOUT.as_millis() as u64)
    );
}
