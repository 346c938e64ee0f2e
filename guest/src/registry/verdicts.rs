//! The registry's verdicts: delivering them (S2, S5), remembering them
//! (S4, S15), checking their signatures (S17), journaling and restoring
//! them (S18), and who decided. The waiters' side is `mod.rs`.

use super::{Registry, RegistryError, TimeSource};
use crate::ids::{Remembered, Waiting};
use crate::journal;
use crate::trust::AuthFailure;
use crate::verdict::{Decider, Outcome, Verdict};
use crate::wire;
use alloc::vec::Vec;

impl<C: TimeSource> Registry<C> {
    /// Trusts exactly these reviewer keys (`(key id, 32-byte Ed25519 public
    /// key)`) from now on (S17); an empty list trusts none, so verdicts need
    /// no signature. On error nothing changes.
    pub fn set_trusted_keys<'a>(
        &mut self,
        keys: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<(), RegistryError> {
        self.trust
            .set(keys)
            .map_err(|e| RegistryError::InvalidConfig(e.reason()))
    }

    /// Delivers a verdict to every waiter on `id` (S2, S5) and remembers it
    /// (S4, S15). Returns how many waiters it resolved: 0 too for a repeat
    /// of the verdict already remembered. A request id that breaks a limit,
    /// the opposite of a remembered verdict (counted in `conflicts`), or any
    /// verdict at all while trusted keys are configured (it carries no
    /// signature; counted in `unauthenticated`) is an error and changes
    /// nothing.
    ///
    /// Writes no journal entry: its caller knows the verdict it delivered
    /// and journals it with [`crate::journal::append`] (carrying the entry
    /// back across the component boundary cost a sixth of a round trip).
    /// Verdicts from frames go through [`Registry::resolve_event`].
    pub fn resolve(&mut self, id: &str, verdict: Verdict) -> Result<u32, RegistryError> {
        self.check_id(id)?;
        if self.trust.required() {
            self.stats.unauthenticated += 1;
            return Err(RegistryError::Unauthenticated(AuthFailure::Unsigned));
        }
        self.apply_verdict(id, verdict, None)
            .map(|(woken, _)| woken)
    }

    /// Applies a verdict event from the stream: checks its id, then, with
    /// trusted keys configured, its signature (S17: a failure is counted in
    /// `unauthenticated` and changes nothing, so a forged verdict never
    /// occupies the memory ahead of the genuine one), then resolves like
    /// [`Registry::resolve`], keeping who decided, and journals it (S18) if
    /// it was newly remembered: only the guest has seen these verdicts.
    pub fn resolve_event(
        &mut self,
        event: &wire::Resolved<'_>,
        verdict: Verdict,
    ) -> Result<u32, RegistryError> {
        self.check_id(event.request_id)?;
        if self.trust.required()
            && let Err(failure) = self.trust.verify(event, verdict)
        {
            self.stats.unauthenticated += 1;
            return Err(RegistryError::Unauthenticated(failure));
        }
        let decider = Decider::from_event(event.reviewer, event.key_id, event.resolved_at_unix_ms);
        let (woken, remembered_at) = self.apply_verdict(event.request_id, verdict, decider)?;
        if let Some(at) = remembered_at {
            journal::append(&mut self.journal, event.request_id, verdict, at);
        }
        Ok(woken)
    }

    /// The verdict remembered for `id` and who decided it, if the event said
    /// (S17); `None` once the memory dropped it (S15's bound).
    pub fn decided_by(&mut self, id: &str) -> Option<(Verdict, Option<Decider>)> {
        let now = self.clock.now_ns();
        self.ids
            .decided_by(id, now)
            .map(|(verdict, decider)| (verdict, decider.cloned()))
    }

    /// Remembers and delivers a verdict whose id was checked; returns the
    /// waiters woken and, if it was newly remembered, when.
    pub(super) fn apply_verdict(
        &mut self,
        id: &str,
        verdict: Verdict,
        decider: Option<Decider>,
    ) -> Result<(u32, Option<u64>), RegistryError> {
        let now = self.clock.now_ns();
        // One lookup: the id's waiters, and its verdict from now on.
        let waiting = match self.ids.remember(id, verdict, decider, now) {
            (Remembered::New, waiting) => waiting,
            (Remembered::Repeat, _) => return Ok((0, None)),
            (Remembered::Conflict, _) => {
                self.stats.conflicts += 1;
                return Err(RegistryError::ConflictingVerdict);
            }
        };
        let Some(Waiting {
            id: waiting_on,
            tickets,
        }) = waiting
        else {
            return Ok((0, Some(now)));
        };
        let mut woken = 0u32;
        for ticket in tickets {
            // A stale ticket may since have been reused on another id: one
            // lookup both checks the id (an `IdRef` compare) and takes the
            // waiter.
            let Some(entry) = self.waiters.remove_if(ticket, |w| w.id == waiting_on) else {
                continue;
            };
            woken = woken.saturating_add(1);
            self.finish(ticket, entry.reply, Outcome::Decided(verdict));
        }
        self.stats.delivered += u64::from(woken);
        self.retire_deadlines(woken as usize);
        Ok((woken, Some(now)))
    }

    /// Drains the journal of verdicts remembered since the last call (S18).
    pub fn take_journal(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.journal)
    }

    /// Remembers the verdicts of a journal a failed instance wrote (S18),
    /// with their original times; returns how many were restored. Bytes
    /// that are not a journal end the walk (never a panic).
    pub fn restore(&mut self, journal_bytes: &[u8]) -> u32 {
        let now = self.clock.now_ns();
        let mut restored = 0u32;
        for entry in journal::entries(journal_bytes) {
            if self.check_id(entry.id).is_ok()
                && self
                    .ids
                    .restore(entry.id, entry.verdict, entry.stored_at, now)
            {
                restored = restored.saturating_add(1);
            }
        }
        restored
    }
}
