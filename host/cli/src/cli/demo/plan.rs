//! The simulation's plan: when each agent starts waiting and what the
//! reviewer will answer, when (seeded, so a run is repeatable).

use super::DemoArgs;
use approval_host::Decision;
use std::time::Duration;

/// What the reviewer will do with one request.
#[derive(Clone, Copy)]
pub(super) struct Plan {
    /// When the agent starts waiting, from the start of the run.
    pub(super) starts: Duration,
    /// The verdict and when it is sent, if the reviewer answers.
    pub(super) verdict: Option<(Decision, Duration)>,
}

/// The plan of every agent of `args`.
pub(super) fn plan(args: &DemoArgs) -> Vec<Plan> {
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let timeout = args.timeout_ms as f64;
    (0..args.agents)
        .map(|_| {
            let starts = rng.f64() * 500.0;
            let verdict = (rng.f64() >= args.unanswered).then(|| {
                let decision = if rng.f64() < args.deny {
                    Decision::Denied
                } else {
                    Decision::Approved
                };
                // Mostly a human-like delay well inside the timeout; one in
                // twenty answers lands before the agent even starts waiting.
                let at = if rng.f64() < 0.05 {
                    (starts - 5.0).max(0.0)
                } else {
                    starts + 20.0 + rng.f64() * timeout * 0.5
                };
                (decision, Duration::from_secs_f64(at / 1000.0))
            });
            Plan {
                starts: Duration::from_secs_f64(starts / 1000.0),
                verdict,
            }
        })
        .collect()
}
