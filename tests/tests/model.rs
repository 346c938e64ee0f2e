//! Property test: random sequences of register / deliver / cancel / advance /
//! sequenced frames (with duplicates) / early verdicts run against the real
//! component through the adapter and against a small reference model of
//! S1–S11, S15 (verdicts are final while remembered) and S16 (frames of
//! several logs: a new log opens a new sequence window), written for
//! clarity, not speed. Every wait's outcome and the guest's counters must
//! agree with the model. A second property runs the same with a sink that
//! trusts Alice's key (S17): frames come signed by Alice, by Mallory's own
//! key, forged in Alice's name, or unsigned, and `deliver` is refused.
//!
//! 10,000 cases by default; `PROPTEST_CASES=N` for more or fewer.

use approval_host::{
    ApprovalSink, Decision, ManualClock, Outcome, ReviewerKey, SinkConfig, SinkError, TrustedKey,
    Verdict, Wait,
};
use approval_proto::ApprovalResolved;
use approval_tests::events::{resolved_event, stream, verdict_event};
use approval_tests::sinks::proptest_cases;
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
        signer: Signer,
    },
}

/// Who signed a frame's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signer {
    /// Alice, the trusted reviewer.
    Alice,
    /// Mallory, with her own (untrusted) key.
    Mallory,
    /// Mallory, naming Alice's key.
    Forged,
    /// Nobody.
    Unsigned,
}

const SIGNERS: [Signer; 4] = [
    Signer::Alice,
    Signer::Mallory,
    Signer::Forged,
    Signer::Unsigned,
];

/// Every verdict a frame can carry, signed once per thread (signing in a
/// debug build is slow): `[id][decision][signer]`, and Alice's public key.
struct Signed {
    alice: TrustedKey,
    verdicts: Vec<Vec<Vec<ApprovalResolved>>>,
}

impl Signed {
    fn new() -> Self {
        let alice = ReviewerKey::generate("alice").expect("key");
        let mallory = ReviewerKey::generate("mallory").expect("key");
        let verdicts = IDS
            .iter()
            .map(|id| {
                (0..5)
                    .map(|decision| {
                        SIGNERS
                            .iter()
                            .map(|signer| {
                                let mut v = ApprovalResolved {
                                    request_id: (*id).into(),
                                    decision,
                                    reviewer: "r".into(),
                                    ..Default::default()
                                };
                                match signer {
                                    Signer::Alice => alice.sign(&mut v),
                                    Signer::Mallory => mallory.sign(&mut v),
                                    Signer::Forged => {
                                        mallory.sign(&mut v);
                                        v.key_id = "alice".into();
                                    }
                                    Signer::Unsigned => {}
                                }
                                v
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Signed {
            alice: alice.trusted(),
            verdicts,
        }
    }

    fn verdict(&self, id: usize, decision: i32, signer: Signer) -> ApprovalResolved {
        let at = SIGNERS.iter().position(|s| *s == signer).unwrap_or(0);
        self.verdicts[id][decision as usize][at].clone()
    }
}

thread_local! {
    static SIGNED: std::rc::Rc<Signed> = std::rc::Rc::new(Signed::new());
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..IDS.len(), 0u64..3_000).prop_map(|(id, timeout_ms)| Op::Register { id, timeout_ms }),
        2 => (0..IDS.len(), 0i32..5).prop_map(|(id, decision)| Op::Deliver { id, decision }),
        1 => any::<usize>().prop_map(|nth| Op::Cancel { nth }),
        2 => (0u64..2_500).prop_map(|ms| Op::Advance { ms }),
        2 => (0u64..12, 0u64..3, 0..IDS.len(), 0i32..5, 0..SIGNERS.len()).prop_map(|(seq, log, id, decision, s)| Op::Frame { seq, log, id, decision, signer: SIGNERS[s] }),
    ]
}

/// The reference model: plain vectors, linear scans.
#[derive(Default)]
struct Model {
    /// Alice's key is trusted (S17).
    signed: bool,
    now: u64,
    /// (wait index, id, deadline) of pending waits.
    waiters: Vec<(usize, usize, u64)>,
    /// Remembered verdicts (S4, S15): (id, verdict, stored at), oldest first.
    cache: VecDeque<(usize, Verdict, u64)>,
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
    unauthenticated: u64,
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

    /// A verdict (or not) for `id` from `signer` (`None`: a direct
    /// `deliver`, which carries no signature); false if it was rejected
    /// (malformed, unauthenticated with keys trusted (S17), or the opposite
    /// of a remembered verdict (S15)).
    fn resolve(&mut self, id: usize, decision: i32, signer: Option<Signer>) -> bool {
        let verdict = match decision {
            1 => Verdict::Approved,
            2 => Verdict::Denied,
            _ => {
                self.malformed += 1;
                return false;
            }
        };
        if self.signed && signer != Some(Signer::Alice) {
            self.unauthenticated += 1;
            return false;
        }
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
    fn frame(&mut self, seq: u64, log: u64, id: usize, decision: i32, signer: Signer) {
        let in_window = log == 0 || log == self.log_id;
        if seq > 0 && in_window && seq <= self.last_seq {
            self.duplicates += 1;
            return;
        }
        if self.resolve(id, decision, Some(signer)) && seq > 0 {
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
    /// The pre-signed verdicts frames carry (ignored by a sink without keys).
    keys: std::rc::Rc<Signed>,
    sink: ApprovalSink,
    clock: approval_host::ManualClock,
    waits: Vec<Option<Wait>>,
    outcomes: Vec<Option<Outcome>>,
}

impl Real {
    /// A sink on virtual time; with `signed`, trusting Alice's key.
    fn new(signed: bool) -> Self {
        let config = SinkConfig {
            verdict_cache_capacity: CACHE_CAPACITY as u32,
            verdict_cache_ttl: Duration::from_nanos(CACHE_TTL),
            ..SinkConfig::default()
        };
        let keys = SIGNED.with(std::rc::Rc::clone);
        let clock = ManualClock::new();
        let mut builder = ApprovalSink::builder().clock(clock.clone()).config(config);
        if signed {
            builder = builder.trusted_key(keys.alice.clone());
        }
        let sink = builder.build().expect("sink");
        Real {
            keys,
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
                let accepted = model.resolve(id, decision, None);
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
                signer,
            } => {
                model.frame(seq, log, id, decision, signer);
                let mut event = resolved_event(seq, self.keys.verdict(id, decision, signer));
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
            s.unauthenticated,
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
            model.unauthenticated,
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
            "unauthenticated, conflicts, delivered, timed out, cancelled, early hits, malformed, duplicates, last seq, log id, log changes"
        );
        Ok(())
    }
}

async fn run_case(ops: Vec<Op>, signed: bool) -> Result<(), TestCaseError> {
    let mut real = Real::new(signed);
    let mut model = Model {
        signed,
        ..Model::default()
    };
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
        rt.block_on(run_case(ops, false))?;
    }

    #[test]
    fn component_with_a_trusted_key_agrees_with_the_reference_model(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(run_case(ops, true))?;
    }
}
