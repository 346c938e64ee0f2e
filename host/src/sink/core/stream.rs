//! The core's stream and state: ingesting frames (moving the resume
//! point), the resume point itself, counters, and a pump's claim on the
//! stream.

use super::Core;
use crate::adapter::{Adapter, Batch};
use crate::error::SinkError;
use crate::report::{IngestReport, ResumePoint};
use crate::stats::Stats;
use approval_guest::stats::Stats as GuestStats;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A pump's hold on its sink's stream; released when dropped.
pub(crate) struct PumpClaim(Arc<Core>);

impl Drop for PumpClaim {
    fn drop(&mut self) {
        self.0.pump_claimed.store(false, Ordering::Release);
    }
}

impl Core {
    /// Runs an ingest export, applies the completions it reports and moves
    /// the resume point.
    pub(in crate::sink) fn ingest(
        &self,
        f: impl FnOnce(&mut Adapter) -> Result<(IngestReport, Batch), SinkError>,
    ) -> Result<IngestReport, SinkError> {
        self.lock(|inner| {
            let (report, batch) = self.call(inner, f)?;
            inner.resume = ResumePoint {
                log_id: report.log_id,
                last_seq: report.last_seq,
            };
            self.complete(inner, batch);
            Ok(report)
        })
    }

    /// One guest call under the lock (after the flush).
    pub(in crate::sink) fn guest<R>(
        &self,
        f: impl FnOnce(&mut Adapter) -> Result<R, SinkError>,
    ) -> Result<R, SinkError> {
        self.lock(|inner| self.call(inner, f))
    }

    /// Where the stream stands: kept by the host, so it survives a reset.
    pub(in crate::sink) fn resume_point(&self) -> ResumePoint {
        self.lock(|inner| inner.resume)
    }

    /// Moves the guest's resume point (never back within one log) and
    /// reads back where it stands.
    pub(in crate::sink) fn resume_from(&self, at: ResumePoint) -> Result<(), SinkError> {
        self.lock(|inner| {
            self.call(inner, |a| a.resume_from(at))?;
            let stats = self.call(inner, |a| a.stats())?;
            inner.resume = ResumePoint {
                log_id: stats.log_id,
                last_seq: stats.last_seq,
            };
            Ok(())
        })
    }

    /// The guest's counters and the host's. If the guest call faults or is
    /// refused, the guest's counters read as zero but for the resume point,
    /// which is the host's and still reads true.
    pub(in crate::sink) fn stats(&self) -> Stats {
        self.lock(|inner| {
            let guest = self.call(inner, |a| a.stats()).unwrap_or(GuestStats {
                last_seq: inner.resume.last_seq,
                log_id: inner.resume.log_id,
                ..GuestStats::default()
            });
            Stats::new(guest, inner.counters)
        })
    }

    /// Counts messages a source skipped as over `max_frame_bytes`.
    pub(in crate::sink) fn note_oversized(&self, skipped: u64) {
        self.lock(|inner| inner.counters.oversized(skipped));
    }

    /// Claims this sink's stream for a pump; `None` if a pump holds it.
    pub(in crate::sink) fn claim_pump(self: &Arc<Self>) -> Option<PumpClaim> {
        let taken = self.pump_claimed.swap(true, Ordering::AcqRel);
        (!taken).then(|| PumpClaim(Arc::clone(self)))
    }

    /// Makes the next guest call trap (tests of S12).
    #[cfg(feature = "fault-injection")]
    pub(in crate::sink) fn inject_trap(&self) {
        self.lock(|inner| inner.adapter.inject_trap());
    }
}
