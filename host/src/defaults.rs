//! The host's defaults against `tests/vectors/host-defaults.json` (SPEC.md
//! §6), the one checked-in copy every host is tested against: a default
//! changed here without the file (or the other way round) fails.

use crate::clock::duration_ns;
use crate::sources::{
    CONCURRENT_LOOKUPS, LOOKUP_TIMEOUT, MAX_BACKOFF, MIN_BACKOFF, MIN_IDLE_TIMEOUT, PumpConfig,
};
use crate::{MAX_CALL_BUDGET, MAX_CRASH_LOOP_BACKOFF, SinkConfig};
use std::time::Duration;

use crate::golden;

fn ms(d: Duration) -> u64 {
    duration_ns(d) / 1_000_000
}

#[test]
fn host_defaults_are_the_pinned_ones() {
    let pinned = golden::read("host-defaults.json");
    let (shared, rust) = (&pinned["shared"], &pinned["rust"]);
    let sink = SinkConfig::default();
    let pump = PumpConfig::default();
    let ours = [
        (&shared["max_memory_bytes"], sink.max_memory_bytes as u64),
        (&shared["call_budget_ms"], ms(sink.call_budget)),
        (&shared["epoch_tick_ms"], ms(crate::component::EPOCH_TICK)),
        (
            &shared["verify_share_of_budget"],
            u64::from(crate::trust::VERIFY_SHARE_OF_BUDGET),
        ),
        (
            &shared["verify_cost_us"],
            crate::trust::VERIFY_COST.as_micros() as u64,
        ),
        (
            &shared["min_signed_frame_bytes"],
            crate::trust::MIN_SIGNED_FRAME_BYTES as u64,
        ),
        (&shared["initial_backoff_ms"], ms(pump.initial_backoff)),
        (&shared["max_backoff_ms"], ms(pump.max_backoff)),
        (&shared["shortest_backoff_ms"], ms(MIN_BACKOFF)),
        (&shared["longest_backoff_ms"], ms(MAX_BACKOFF)),
        (&shared["idle_timeout_ms"], ms(pump.idle_timeout)),
        (&shared["shortest_idle_timeout_ms"], ms(MIN_IDLE_TIMEOUT)),
        (&rust["max_call_budget_ms"], ms(MAX_CALL_BUDGET)),
        (
            &rust["crash_loop_resets"],
            u64::from(sink.crash_loop_resets),
        ),
        (&rust["crash_loop_window_ms"], ms(sink.crash_loop_window)),
        (&rust["crash_loop_backoff_ms"], ms(sink.crash_loop_backoff)),
        (
            &rust["max_crash_loop_backoff_ms"],
            ms(MAX_CRASH_LOOP_BACKOFF),
        ),
        (
            &rust["longest_quarantine_ms"],
            ms(crate::sink::LONGEST_QUARANTINE),
        ),
        (
            &rust["invalidation_buffer"],
            crate::sink::INVALIDATION_BUFFER as u64,
        ),
        (&rust["queue_flush_bytes"], crate::sink::FLUSH_BYTES as u64),
        (
            &rust["journal_tail_entries"],
            crate::sink::TAIL_ENTRIES as u64,
        ),
        (
            &rust["chunk_attempts"],
            u64::from(crate::sources::CHUNK_ATTEMPTS),
        ),
        (
            &rust["reader_chunk_bytes"],
            crate::sources::READER_CHUNK as u64,
        ),
        (&rust["concurrent_lookups"], CONCURRENT_LOOKUPS as u64),
        (&rust["queued_lookups"], crate::sink::QUEUED_LOOKUPS as u64),
        (&rust["lookup_timeout_ms"], ms(LOOKUP_TIMEOUT)),
    ];
    for (i, (pinned, ours)) in ours.iter().enumerate() {
        assert_eq!(
            pinned.as_u64(),
            Some(*ours),
            "default #{i} differs from host-defaults.json"
        );
    }
    assert_eq!(rust["jitter"].as_f64(), Some(pump.jitter));
}
