//! The `registry` export: each function onto the [`Registry`] core, the
//! frame decoder or the op buffer, and the ingest reports.

use super::assembly::approval::types::{
    Applied, Batch, Config, Decider, Decision, IngestReport, OpError, Registered, SinkError,
    SinkStats, TrustedKey,
};
use super::convert::drain;
use super::exports::assembly::approval::registry::Guest as RegistryGuest;
use super::ingest::IngestTotals;
use super::{Component, DECODER, NOW, PRESIZE_WAITERS, with_registry};
use crate::frames;
use crate::ops;
use crate::registry::{self, Reply};
use alloc::string::String;
use alloc::vec::Vec;

impl RegistryGuest for Component {
    fn default_config() -> Config {
        let d = crate::config::Config::DEFAULT;
        Config {
            max_waiters: d.max_waiters,
            max_request_id_bytes: d.max_request_id_bytes,
            max_frame_bytes: d.max_frame_bytes,
            verdict_cache_capacity: d.verdict_cache_capacity,
            verdict_cache_ttl_ns: d.verdict_cache_ttl_ns,
            max_timeout_ns: d.max_timeout_ns,
            hash_seed: d.hash_seed,
        }
    }

    fn configure(cfg: Config) -> Result<(), SinkError> {
        let config = crate::config::Config {
            max_waiters: cfg.max_waiters,
            max_request_id_bytes: cfg.max_request_id_bytes,
            max_frame_bytes: cfg.max_frame_bytes,
            verdict_cache_capacity: cfg.verdict_cache_capacity,
            verdict_cache_ttl_ns: cfg.verdict_cache_ttl_ns,
            max_timeout_ns: cfg.max_timeout_ns,
            hash_seed: cfg.hash_seed,
        };
        with_registry(|r| r.configure(config, PRESIZE_WAITERS)).map_err(Into::into)
    }

    fn set_trusted_keys(keys: Vec<TrustedKey>) -> Result<(), SinkError> {
        let keys = keys
            .iter()
            .map(|k| (k.id.as_str(), k.public_key.as_slice()));
        with_registry(|r| r.set_trusted_keys(keys)).map_err(Into::into)
    }

    fn decided_by(request_id: String) -> Option<Decider> {
        let (verdict, decider) = with_registry(|r| r.decided_by(&request_id))?;
        let decider = decider.unwrap_or_default();
        Some(Decider {
            decision: verdict.into(),
            reviewer: decider.reviewer,
            key_id: decider.key_id,
            resolved_at_unix_ms: decider.resolved_at_unix_ms,
        })
    }

    fn register(waiter: u64, request_id: String, timeout_ns: u64) -> Result<Registered, SinkError> {
        let registered =
            with_registry(|r| r.register(waiter, &request_id, timeout_ns, Reply::Batched))?;
        Ok(match registered {
            registry::Registered::Settled(o) => Registered::Settled(o.into()),
            registry::Registered::Pending(next) => Registered::Pending(next),
        })
    }

    fn cancel(waiter: u64) -> bool {
        with_registry(|r| r.cancel(waiter))
    }

    fn resolve(request_id: String, decision: Decision) -> Result<Batch, SinkError> {
        with_registry(|r| {
            // Not journaled: the caller knows the verdict it delivered and
            // journals it itself (S18), so no journal bytes cross back.
            r.resolve(&request_id, decision.into())?;
            Ok(drain(r))
        })
    }

    fn apply(now: u64, buf: Vec<u8>) -> Applied {
        // This scope's instant, from the host (see the WIT).
        NOW.with(|n| n.set(Some(now)));
        with_registry(|r| {
            let applied = ops::apply(r, &buf);
            Applied {
                batch: drain(r),
                errors: applied
                    .errors
                    .into_iter()
                    .map(|(op, failure)| OpError {
                        op,
                        error: failure.into(),
                    })
                    .collect(),
                woken: applied.woken,
            }
        })
    }

    fn expire() -> Batch {
        with_registry(|r| {
            r.expire();
            drain(r)
        })
    }

    fn ingest_frames(bytes: Vec<u8>) -> IngestReport {
        let mut totals = IngestTotals::default();
        let fatal = DECODER
            .with(|d| totals.feed(&mut d.borrow_mut(), &bytes))
            .err();
        totals.report(fatal)
    }

    fn apply_frame(frame: Vec<u8>) -> IngestReport {
        let mut totals = IngestTotals::default();
        totals.apply(&frame);
        totals.report(None)
    }

    fn reset_stream() -> u32 {
        let dropped =
            DECODER.with(|d| with_registry(|r| frames::end_stream(r, &mut d.borrow_mut())));
        u32::try_from(dropped).unwrap_or(u32::MAX)
    }

    fn restore_verdicts(journal: Vec<u8>) -> u32 {
        with_registry(|r| r.restore(&journal))
    }

    fn resume_from(log_id: u64, seq: u64) {
        with_registry(|r| r.window().resume_from(log_id, seq));
    }

    fn stats() -> SinkStats {
        let s = with_registry(|r| r.stats());
        macro_rules! to_wit {
            ([$s:ident] $($(#[$doc:meta])* $name:ident: $ty:ty,)*) => {
                SinkStats { $($name: $s.$name,)* }
            };
        }
        crate::for_each_stat!(to_wit, s)
    }
}
