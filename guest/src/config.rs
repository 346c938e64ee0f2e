//! Limits, cache settings and the hash seed of a registry (S4, S11, S13,
//! S20), and their defaults: [`Config::DEFAULT`] is the one place each
//! default is written (SPEC.md §6). The Rust host's `SinkConfig` and the
//! gateway's limits derive theirs from it; other hosts read it from the
//! component (`registry.default-config`).

/// Limits and cache settings (S4, S11, S13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Most waiters pending at once. Default 1,000,000.
    pub max_waiters: u32,
    /// Longest request id, in bytes. Default 256.
    pub max_request_id_bytes: u32,
    /// Largest protobuf frame, in bytes (used by the frame decoder).
    /// Default 64 KiB.
    pub max_frame_bytes: u32,
    /// Most early verdicts cached; 0 disables the cache. Default 10,000.
    pub verdict_cache_capacity: u32,
    /// How long an early verdict stays usable, in nanoseconds. Default 60 s.
    pub verdict_cache_ttl_ns: u64,
    /// Longest timeout honoured, in nanoseconds; longer ones are capped to
    /// it. Default 24 h.
    pub max_timeout_ns: u64,
    /// Seed of the registry's hash maps (S20). The host passes a random one
    /// per instance, so request ids a peer chooses cannot be made to
    /// collide; a wasm guest has no entropy of its own. Default 0 (tests).
    pub hash_seed: u64,
}

const SECOND_NS: u64 = 1_000_000_000;

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Config {
    /// Every default, as a constant (so other crates' constants can derive
    /// from it).
    pub const DEFAULT: Config = Config {
        max_waiters: 1_000_000,
        max_request_id_bytes: 256,
        max_frame_bytes: 64 * 1024,
        verdict_cache_capacity: 10_000,
        verdict_cache_ttl_ns: 60 * SECOND_NS,
        max_timeout_ns: 24 * 3600 * SECOND_NS,
        hash_seed: 0,
    };

    /// Why this configuration cannot be used, if it cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if self.max_waiters == 0 {
            Some("max-waiters must be at least 1")
        } else if self.max_request_id_bytes == 0 {
            Some("max-request-id-bytes must be at least 1")
        } else if self.max_frame_bytes == 0 {
            Some("max-frame-bytes must be at least 1")
        } else {
            None
        }
    }
}

/// The hash maps' hasher: foldhash seeded by the host (S20).
pub type SeededState = foldhash::fast::FixedState;

/// A hasher for `seed`.
pub fn seeded(seed: u64) -> SeededState {
    foldhash::fast::FixedState::with_seed(seed)
}
