//! [`SeqWindow`]: where the stream stands, as `(log_id, last_seq)`, and the
//! duplicate rule of sequenced events (S9, S16).
//!
//! # Invariants
//!
//! * `last_seq` is the highest sequence number *applied* from log `log_id`
//!   (0: unknown log). Only [`SeqWindow::note_applied`] moves it, so a
//!   rejected frame, whatever seq it claims, never does.
//! * An event is a duplicate iff it is sequenced (`seq` > 0), of this
//!   window's log (or of no stated log, as from an older gateway), and not
//!   past `last_seq`.
//! * A sequenced event of another log that is applied opens a new window:
//!   the log's id replaces the old one and `last_seq` restarts from it
//!   (counted in `log_changes` once a window existed). Unsequenced events
//!   (seq 0: lookups, direct pushes) never open one.

/// The resume point of one stream and its counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqWindow {
    /// The log whose window this is (0: unknown).
    pub log_id: u64,
    /// The highest sequence number applied from it.
    pub last_seq: u64,
    /// Sequenced events ignored as duplicates.
    pub duplicates: u64,
    /// Windows opened by another log's events.
    pub log_changes: u64,
}

impl SeqWindow {
    /// Whether an event with `seq` of log `log_id` was applied already,
    /// counting it if so.
    pub fn is_duplicate(&mut self, seq: u64, log_id: u64) -> bool {
        let duplicate = seq != 0 && self.in_window(log_id) && seq <= self.last_seq;
        if duplicate {
            self.duplicates += 1;
        }
        duplicate
    }

    /// An event with `seq` of log `log_id` was applied: the resume point
    /// moves past it, in a new window if it came from another log.
    pub fn note_applied(&mut self, seq: u64, log_id: u64) {
        if seq == 0 {
            return;
        }
        if !self.in_window(log_id) {
            if self.log_id != 0 || self.last_seq != 0 {
                self.log_changes += 1;
            }
            self.log_id = log_id;
            self.last_seq = 0;
        }
        self.last_seq = self.last_seq.max(seq);
    }

    /// Sets the resume point (a host that replaced a failed instance carries
    /// it over): within the same log it never moves back.
    pub fn resume_from(&mut self, log_id: u64, seq: u64) {
        if log_id == self.log_id {
            self.last_seq = self.last_seq.max(seq);
        } else {
            self.log_id = log_id;
            self.last_seq = seq;
        }
    }

    /// Whether events of `log_id` belong to this window: the same log, or
    /// a log that does not say (0, an older gateway).
    fn in_window(&self, log_id: u64) -> bool {
        log_id == 0 || log_id == self.log_id
    }
}
