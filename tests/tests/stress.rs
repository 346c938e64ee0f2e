//! S14 under load: several sinks in one process, thousands of tokio tasks on
//! a multi-thread runtime waiting, cancelling and resolving concurrently.
//! Afterwards every count is back to zero and no outcome is wrong.

use approval_host::{ApprovalSink, Decision, Outcome, Verdict};
use approval_tests::sinks::manual_sink;
use approval_tests::time::HOUR;
use std::time::Duration;

const SINKS: usize = 4;
const PER_SINK: usize = 2_000;

fn expected(i: usize) -> Option<Decision> {
    match i % 5 {
        0 => None, // this one gives up (cancels) instead
        1 | 3 => Some(Decision::Approved),
        _ => Some(Decision::Denied),
    }
}

async fn agent(sink: ApprovalSink, i: usize) -> (usize, Option<Outcome>) {
    let wait = sink.wait(format!("req-{i}"), HOUR);
    match expected(i) {
        Some(_) => (i, Some(wait.await.expect("valid id"))),
        None => {
            // Gives up after a moment: the wait is dropped, so cancelled.
            let _ = tokio::time::timeout(Duration::from_millis(1), wait).await;
            (i, None)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_across_sinks_wait_cancel_and_resolve_concurrently() {
    let sinks: Vec<_> = (0..SINKS).map(|_| manual_sink()).collect();
    let mut agents = Vec::new();
    let mut reviewers = Vec::new();
    for (sink, _clock) in &sinks {
        for i in 0..PER_SINK {
            agents.push(tokio::spawn(agent(sink.clone(), i)));
        }
        let sink = sink.clone();
        reviewers.push(tokio::spawn(async move {
            // Verdicts in a scrambled order, racing the registrations: some
            // arrive first and are served from the early-verdict cache.
            let mut order: Vec<usize> = (0..PER_SINK).filter(|&i| expected(i).is_some()).collect();
            fastrand::shuffle(&mut order);
            for (n, i) in order.into_iter().enumerate() {
                let decision = expected(i).expect("filtered");
                sink.deliver(&format!("req-{i}"), decision)
                    .expect("valid verdict");
                if n % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for r in reviewers {
        r.await.unwrap();
    }
    for a in agents {
        let (i, outcome) = a.await.unwrap();
        let verdict = expected(i).map(|d| Verdict::try_from(d).expect("a verdict"));
        assert_eq!(outcome, verdict.map(Outcome::Decided), "agent {i}");
    }
    for (sink, _clock) in &sinks {
        assert_eq!(sink.waiter_count(), 0);
        let s = sink.stats().await;
        // S15 (issue #12 changed this from 0 cached): every verdict is
        // remembered once, none twice.
        let verdicts = (PER_SINK - PER_SINK / 5) as u32;
        assert_eq!((s.waiters, s.ids, s.cached_verdicts), (0, 0, verdicts));
        assert_eq!(s.delivered + s.early_hits, (PER_SINK - PER_SINK / 5) as u64);
        assert_eq!(s.cancelled, (PER_SINK / 5) as u64);
    }
}
