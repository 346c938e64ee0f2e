//! Property test: random sequences of register / deliver / cancel / advance /
//! sequenced frames (with duplicates) / early verdicts run against the real
//! component through the adapter and against a small reference model of
//! S1–S11, S15 (verdicts are final while remembered) and S16 (frames of
//! several logs: a new log opens a new sequence window), written for
//! clarity, not speed. Every wait's outcome and the guest's counters must
//! agree with the model.
//!
//! 10,000 cases by default; `PROPTEST_CASES=N` for more or fewer.

use approval_host::{ApprovalSink, Decision, Outcome, SinkConfig, SinkError, Wait};
use approval_tests::events::{stream, verdict_event};
use approval_tests::sinks::{manual_sink_with, proptest_cases};
use approval_tests::time::{MS_NS, settle_until};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::time::Duration;

const CACHE_CAPACITY: usize = 3;
const CACHE_TTL: u64 = 2_000 * MS_NS;
const IDS: [&str; 4] = ["a", "b", "c", "d"];

#[derive(Debug, Clone)]
enum Op {
    /// A wait on `IDS[id]` with this timeout (ms).
    Register { id: usize, timeout_ms: u64 },
    /// `deliver` with a raw decision (0..=3 are the enum's values).
    Deliver { id: usize, decision: i32 },
    /// Drop the n-th live wait (modulo the number live).
    Cancel { nth: usize },
    /// Move the clock on.
    Advance { ms: u64 },
    /// One sequenced frame of log `log` (0: unknown); `seq` and `log` from
    /// small ranges, so duplicates and log changes happen.
    Frame {
        seq: u64,
        log: u64,
        id: usize,
        decision: i32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..IDS.len(), 0u64..3_000).prop_map(|(id, timeout_ms)| Op::Register { id, timeout_ms }),
        2 => (0..IDS.len(), 0i32..5).prop_map(|(id, decision)| Op::Deliver { id, decision }),
        1 => any::<usize>().prop_map(|nth| Op::Cancel { nth }),
        2 => (0u64..2_500).prop_map(|ms| Op::Advance { ms }),
        2 => (0u64..12, 0u64..3, 0..IDS.len(), 0i32..5).prop_map(|(seq, log, id, decision)| Op::Frame { seq, log, id, decision }),
    ]
}

/// The reference model: plain vectors, linear scans.
#[derive(Default)]
struct Model {
    now: u64,
    /// (wait index, id, deadline) of pending waits.
    waiters: Vec<(usize, usize, u64)>,
    /// Remembered verdicts (S4, S15): (id, verdict, stored at), oldest first.
    cache: VecDeque<(usize, Decision, u64)>,
    outcomes: Vec<Option<Outcome>>,
    last_seq: u64,
    log_id: u64,
    log_changes: u64,
    delivered: u64,
    timed_out: u64,
    cancelled: u64,
    early_hits: u64,
    malformed: u64,
    duplicates: u64,
    conflicts: u64,
}

impl Model {
    fn register(&mut self, id: usize, timeout: u64) -> usize {
        let index = self.outcomes.len();
        self.outcomes.push(None);
        if let Some(pos) = self.cache.iter().position(|c| c.0 == id) {
            let (_, verdict, stored) = self.cache[pos];
            if self.now - stored <= CACHE_TTL {
                // S15: remembered, not consumed.
                self.early_hits += 1;
                self.outcomes[index] = Some(Outcome::Decided(verdict));
                return index;
            }
            self.cache.remove(pos);
        }
        self.waiters.push((index, id, self.now + timeout));
        index
    }

    /// A verdict (or not) for `id`; false if it was rejected (malformed, or
    /// the opposite of a remembered verdict: S15).
    fn resolve(&mut self, id: usize, decision: i32) -> bool {
        let verdict = match decision {
            1 => Decision::Approved,
            2 => Decision::Denied,
            _ => {
                self.malformed += 1;
                return false;
            }
        };
        // S4/S15: expired verdicts are forgotten first; a remembered one is
        // final (a repeat is harmless, the opposite a conflict).
        while self
            .cache
            .front()
            .is_some_and(|c| self.now - c.2 > CACHE_TTL)
        {
            self.cache.pop_front();
        }
        if let Some(&(_, remembered, _)) = self.cache.iter().find(|c| c.0 == id) {
            if remembered == verdict {
                return true;
            }
            self.conflicts += 1;
            return false;
        }
        self.cache.push_back((id, verdict, self.now));
        while self.cache.len() > CACHE_CAPACITY {
            self.cache.pop_front();
        }
        let (hit, keep): (Vec<_>, Vec<_>) = self.waiters.drain(..).partition(|w| w.1 == id);
        self.waiters = keep;
        for &(index, _, _) in &hit {
            self.outcomes[index] = Some(Outcome::Decided(verdict));
            self.delivered += 1;
        }
        true
    }

    fn cancel(&mut self, nth: usize) -> Option<usize> {
        if self.waiters.is_empty() {
            return None;
        }
        let (index, _, _) = self.waiters.remove(nth % self.waiters.len());
        self.outcomes[index] = Some(Outcome::Cancelled);
        self.cancelled += 1;
        Some(index)
    }

    fn advance(&mut self, by: u64) {
        self.now += by;
        let now = self.now;
        let (due, pending): (Vec<_>, Vec<_>) = self.waiters.drain(..).partition(|w| w.2 <= now);
        self.waiters = pending;
        for (index, _, _) in due {
            self.outcomes[index] = Some(Outcome::TimedOut);
            self.timed_out += 1;
        }
    }

    /// A sequenced frame: a duplicate if its seq was applied already; it
    /// moves `last_seq` only if its verdict is applied (a rejected frame
    /// never does).
    fn frame(&mut self, seq: u64, log: u64, id: usize, decision: i32) {
        let in_window = log == 0 || log == self.log_id;
        if seq > 0 && in_window && seq <= self.last_seq {
            self.duplicates += 1;
            return;
        }
        if self.resolve(id, decision) && seq > 0 {
            if !in_window {
                if self.log_id != 0 || self.last_seq != 0 {
                    self.log_changes += 1;
                }
                self.log_id = log;
                self.last_seq = 0;
            }
            self.last_seq = self.last_seq.max(seq);
        }
    }
}

/// The component side of one case.
struct Real {
    sink: ApprovalSink,
    clock: approval_host::ManualClock,
    waits: Vec<Option<Wait>>,
    outcomes: Vec<Option<Outcome>>,
}

impl Real {
    fn new() -> Self {
        let config = SinkConfig {
            verdict_cache_capacity: CACHE_CAPACITY as u32,
            verdict_cache_ttl: Duration::from_nanos(CACHE_TTL),
            ..SinkConfig::default()
        };
        let (sink, clock) = manual_sink_with(config);
        Real {
            sink,
            clock,
            waits: Vec::new(),
            outcomes: Vec::new(),
        }
    }

    /// Collects every finished wait's outcome without blocking.
    fn poll_all(&mut self) {
        for (i, slot) in self.waits.iter_mut().enumerate() {
            if let Some(wait) = slot
                && let Some(result) = futures::FutureExt::now_or_never(&mut *wait)
            {
                self.outcomes[i] = Some(result.expect("no errors for valid ids"));
                *slot = None;
            }
        }
    }

    /// Applies `op` to the model and to the component.
    async fn step(&mut self, op: Op, model: &mut Model) -> Result<(), TestCaseError> {
        match op {
            Op::Register { id, timeout_ms } => {
                model.register(id, timeout_ms * MS_NS);
                let wait = self.sink.wait(IDS[id], Duration::from_millis(timeout_ms));
                self.waits.push(Some(wait));
                self.outcomes.push(None);
            }
            Op::Deliver { id, decision } => {
                let accepted = model.resolve(id, decision);
                match Decision::try_from(decision) {
                    Ok(d) => {
                        let got = self.sink.deliver(IDS[id], d);
                        prop_assert_eq!(got.is_ok(), accepted, "deliver {:?}", d);
                    }
                    // Unknown values cannot be a `Decision`: send them as a frame.
                    Err(_) => {
                        let bytes = stream(&[verdict_event(0, IDS[id], decision)]);
                        let report = self.sink.ingest_bytes(&bytes).expect("ingest");
                        prop_assert_eq!(report.rejected, 1);
                    }
                }
            }
            Op::Cancel { nth } => {
                // Cancel the model's n-th pending waiter, by the same index.
                if let Some(index) = model.cancel(nth) {
                    self.waits[index] = None;
                    self.outcomes[index] = Some(Outcome::Cancelled);
                }
            }
            Op::Advance { ms } => {
                model.advance(ms * MS_NS);
                self.clock.advance(Duration::from_millis(ms));
                // Let the sink's timer task run `expire` before going on.
                let pending = model.waiters.len();
                settle_until(|| self.sink.waiter_count() == pending).await;
            }
            Op::Frame {
                seq,
                log,
                id,
                decision,
            } => {
                model.frame(seq, log, id, decision);
                let mut event = verdict_event(seq, IDS[id], decision);
                event.log_id = log;
                let bytes = stream(&[event]);
                self.sink
                    .ingest_bytes(&bytes)
                    .map_err(|e: SinkError| TestCaseError::fail(e.to_string()))?;
            }
        }
        self.poll_all();
        Ok(())
    }

    /// Every outcome and counter agrees with the model's.
    async fn agrees_with(mut self, model: &Model) -> Result<(), TestCaseError> {
        self.poll_all();
        prop_assert_eq!(&self.outcomes, &model.outcomes);
        let s = self.sink.stats().await;
        prop_assert_eq!(s.waiters as usize, model.waiters.len());
        let real = [
            s.conflicts,
            s.delivered,
            s.timed_out,
            s.cancelled,
            s.early_hits,
            s.malformed,
            s.duplicates,
            s.last_seq,
            s.log_id,
            s.log_changes,
        ];
        let expected = [
            model.conflicts,
            model.delivered,
            model.timed_out,
            model.cancelled,
            model.early_hits,
            model.malformed,
            model.duplicates,
            model.last_seq,
            model.log_id,
            model.log_changes,
        ];
        prop_assert_eq!(
            real,
            expected,
            "conflicts, delivered, timed out, cancelled, early hits, malformed, duplicates, last seq, log id, log changes"
        );
        Ok(())
    }
}

async fn run_case(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut real = Real::new();
    let mut model = Model::default();
    for op in ops {
        real.step(op, &mut model).await?;
        prop_assert_eq!(real.sink.waiter_count(), model.waiters.len());
    }
    real.agrees_with(&model).await
}

proptest! {
    #![proptest_config(ProptestConfig { cases: proptest_cases(10_000), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn component_agrees_with_the_reference_model(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(run_case(ops))?;
    }
}
