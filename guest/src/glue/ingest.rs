//! One ingest's totals over frames and chunks, and the report it returns:
//! shared by the `registry` export's `ingest-frames` and `apply-frame` and
//! the plugin's async `ingest`.

use super::assembly::approval::types::{IngestReport, SinkError};
use super::convert::drain;
use super::with_registry;
use crate::frames::{self, FrameDecoder, FrameError, MAX_REPORTED_ERRORS};
use alloc::vec::Vec;

/// Tells the host about a policy invalidation (S10).
fn forward_invalidation(agent_id: &str) {
    super::assembly::approval::host_events::policy_invalidated(agent_id);
}

/// Totals of one ingest, over frames and chunks.
#[derive(Default)]
pub(super) struct IngestTotals {
    events: u32,
    duplicates: u32,
    rejected: u32,
    errors: Vec<SinkError>,
}

impl IngestTotals {
    /// Feeds `bytes` through `decoder`, applying each frame to the registry.
    pub(super) fn feed(
        &mut self,
        decoder: &mut FrameDecoder,
        bytes: &[u8],
    ) -> Result<(), FrameError> {
        with_registry(|r| {
            frames::ingest(r, decoder, bytes, &mut forward_invalidation, |result| {
                self.record(result)
            })
        })
    }

    /// Applies one whole frame body, outside any stream.
    pub(super) fn apply(&mut self, frame: &[u8]) {
        let result = with_registry(|r| frames::apply_frame(r, frame, &mut forward_invalidation));
        self.record(result);
    }

    fn record(&mut self, result: Result<frames::Applied, FrameError>) {
        match result {
            Ok(frames::Applied::Duplicate) => self.duplicates = self.duplicates.saturating_add(1),
            Ok(_) => self.events = self.events.saturating_add(1),
            Err(err) => {
                self.rejected = self.rejected.saturating_add(1);
                if self.errors.len() < MAX_REPORTED_ERRORS {
                    self.errors.push(err.into());
                }
            }
        }
    }

    /// Events applied so far (the async `ingest`'s answer).
    #[cfg(feature = "plugin")]
    pub(super) fn events(&self) -> u32 {
        self.events
    }

    /// The report of one ingest call; drains the completions it caused.
    pub(super) fn report(self, fatal: Option<FrameError>) -> IngestReport {
        with_registry(|r| {
            let stats = r.stats();
            IngestReport {
                batch: drain(r),
                events: self.events,
                duplicates: self.duplicates,
                rejected: self.rejected,
                errors: self.errors,
                fatal: fatal.map(Into::into),
                last_seq: stats.last_seq,
                log_id: stats.log_id,
            }
        })
    }
}
