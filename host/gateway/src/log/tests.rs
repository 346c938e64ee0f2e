//! The log's finality, durability and bounds, on a manual clock where time
//! matters (SPEC.md §9.1, S16).

use super::*;
use crate::limits::MIN_VERDICT_TTL;
use crate::store::StoreError;
use approval_proto::{ApprovalResolved, Decision, PolicyInvalidated};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

fn verdict(id: &str, decision: Decision) -> Event {
    Event::ApprovalResolved(ApprovalResolved {
        request_id: id.into(),
        decision: decision as i32,
        reviewer: "alice".into(),
        ..Default::default()
    })
}

fn invalidation(agent: &str) -> Event {
    Event::PolicyInvalidated(PolicyInvalidated {
        agent_id: agent.into(),
    })
}

fn decision_of(event: &InvalidationEvent) -> Option<i32> {
    match &event.event {
        Some(Event::ApprovalResolved(r)) => Some(r.decision),
        _ => None,
    }
}

/// A clock the test moves by hand (Unix milliseconds).
fn manual_clock(start_ms: i64) -> (Arc<AtomicI64>, Clock) {
    let now = Arc::new(AtomicI64::new(start_ms));
    let read = Arc::clone(&now);
    (now, Arc::new(move || read.load(Ordering::SeqCst)))
}

#[tokio::test]
async fn the_first_verdict_stands_and_the_same_one_answers_its_seq() {
    let log = GatewayLog::in_memory(LogLimits::default()).unwrap();
    let seq = log.publish(verdict("r1", Decision::Denied)).await.unwrap();
    assert_eq!(seq, 1);
    assert_eq!(
        log.publish(verdict("r1", Decision::Approved)).await,
        Err(PublishError::AlreadyDecided {
            decision: Decision::Denied as i32,
            key_id: String::new(),
            seq: 1
        })
    );
    // The same decision again is not a second event.
    assert_eq!(log.publish(verdict("r1", Decision::Denied)).await, Ok(1));
    let stats = log.stats();
    assert_eq!((stats.last_seq, stats.verdicts, stats.conflicts), (1, 1, 1));
}

/// The attack of "Gateway I": invalidations push a denial out of the
/// replay retention; the denial still stands and is still looked up.
#[tokio::test]
async fn an_invalidation_flood_does_not_unsettle_a_denial() {
    let log = GatewayLog::in_memory(LogLimits::retaining(10)).unwrap();
    log.publish(verdict("wire", Decision::Denied))
        .await
        .unwrap();
    for i in 0..1_000 {
        log.publish(invalidation(&format!("agent-{i}")))
            .await
            .unwrap();
    }
    let stats = log.stats();
    assert_eq!(stats.retained, 10);
    assert!(stats.dropped >= 991, "{stats:?}");
    assert!(matches!(
        log.publish(verdict("wire", Decision::Approved)).await,
        Err(PublishError::AlreadyDecided { seq: 1, .. })
    ));
    let found = log
        .lookup(vec!["wire".into(), "unknown".into()])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].seq, 1);
    assert_eq!(decision_of(&found[0]), Some(Decision::Denied as i32));
}

#[tokio::test]
async fn a_full_record_refuses_new_verdicts_and_forgets_none() {
    let limits = LogLimits {
        max_verdicts: 3,
        ..LogLimits::default()
    };
    let log = GatewayLog::in_memory(limits).unwrap();
    for id in ["a", "b", "c"] {
        log.publish(verdict(id, Decision::Denied)).await.unwrap();
    }
    assert_eq!(
        log.publish(verdict("d", Decision::Approved)).await,
        Err(PublishError::Full { max: 3 })
    );
    // Nothing was forgotten to make room: every denial still stands.
    for id in ["a", "b", "c"] {
        assert!(matches!(
            log.publish(verdict(id, Decision::Approved)).await,
            Err(PublishError::AlreadyDecided { .. })
        ));
    }
    // Invalidations are not verdicts: the full record does not stop them.
    log.publish(invalidation("agent")).await.unwrap();
    let stats = log.stats();
    assert_eq!((stats.verdicts, stats.refused_verdicts), (3, 1));
    assert_eq!(log.lookup(vec!["d".into()]).await.unwrap(), vec![]);
}

#[tokio::test]
async fn a_verdict_stays_final_for_its_ttl_then_expires() {
    let (now, clock) = manual_clock(1_000_000);
    let ttl = MIN_VERDICT_TTL;
    let limits = LogLimits {
        max_verdicts: 1,
        verdict_ttl: ttl,
        ..LogLimits::default()
    };
    let log = GatewayLog::with_clock(None, limits, clock).unwrap();
    log.publish(verdict("r", Decision::Denied)).await.unwrap();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap();
    now.fetch_add(ttl_ms - 1, Ordering::SeqCst);
    assert!(log.publish(verdict("r", Decision::Approved)).await.is_err());
    assert_eq!(log.lookup(vec!["r".into()]).await.unwrap().len(), 1);
    now.fetch_add(2, Ordering::SeqCst);
    // Expired: no longer looked up, no longer in the way, and its place in
    // the full record is free again.
    assert_eq!(log.lookup(vec!["r".into()]).await.unwrap(), vec![]);
    assert_eq!(log.publish(verdict("s", Decision::Approved)).await, Ok(2));
    assert_eq!(
        log.publish(verdict("r", Decision::Approved)).await,
        Err(PublishError::Full { max: 1 })
    );
}

#[test]
fn limits_below_their_floor_are_refused() {
    let short = LogLimits {
        verdict_ttl: MIN_VERDICT_TTL - Duration::from_millis(1),
        ..LogLimits::default()
    };
    assert!(matches!(
        GatewayLog::in_memory(short),
        Err(StoreError::Limits(_))
    ));
    let none = LogLimits {
        max_verdicts: 0,
        ..LogLimits::default()
    };
    assert!(matches!(
        GatewayLog::in_memory(none),
        Err(StoreError::Limits(_))
    ));
}

/// A restart on the same directory is the same log: same id, every
/// committed event, and the first verdict still wins.
#[tokio::test]
async fn a_durable_log_survives_its_process() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gateway");
    let (id, seqs) = {
        let log = GatewayLog::open(&data, LogLimits::default()).unwrap();
        let mut seqs = Vec::new();
        for i in 0..5 {
            seqs.push(
                log.publish(verdict(&format!("r{i}"), Decision::Denied))
                    .await
                    .unwrap(),
            );
        }
        log.publish(invalidation("agent")).await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&data), 0o700);
            // The database and its WAL (there while the log is open) are
            // private too, whatever the umask.
            for file in ["lock", "log.sqlite3", "log.sqlite3-wal"] {
                assert_eq!(mode(&data.join(file)), 0o600, "{file}");
            }
        }
        (log.log_id(), seqs)
    };
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    let log = GatewayLog::open(&data, LogLimits::default()).unwrap();
    assert_eq!(log.log_id(), id);
    let stats = log.stats();
    assert_eq!((stats.last_seq, stats.retained, stats.verdicts), (6, 6, 5));
    let (_, backlog, _) = log.follow(0, id);
    assert_eq!(
        backlog.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert!(backlog.iter().all(|e| e.log_id == id));
    assert!(matches!(
        log.publish(verdict("r3", Decision::Approved)).await,
        Err(PublishError::AlreadyDecided { seq: 4, .. })
    ));
    assert_eq!(log.publish(invalidation("agent")).await, Ok(7));
}

#[tokio::test]
async fn a_second_log_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = GatewayLog::open(dir.path(), LogLimits::default()).unwrap();
    let second = GatewayLog::open(dir.path(), LogLimits::default());
    assert!(
        matches!(second, Err(StoreError::Locked { .. })),
        "{second:?}"
    );
    drop(first);
    // Released with the last handle.
    GatewayLog::open(dir.path(), LogLimits::default()).unwrap();
}

#[tokio::test]
async fn a_database_of_another_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(GatewayLog::open(dir.path(), LogLimits::default()).unwrap());
    let db = rusqlite::Connection::open(dir.path().join(crate::store::DATABASE_FILE)).unwrap();
    db.execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    drop(db);
    let reopened = GatewayLog::open(dir.path(), LogLimits::default());
    assert!(
        matches!(reopened, Err(StoreError::Schema { .. })),
        "{reopened:?}"
    );
}

/// Concurrent publications share transactions: fewer commits than
/// verdicts, and every one acknowledged with its own seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_verdicts_are_committed_in_groups() {
    let dir = tempfile::tempdir().unwrap();
    let log = GatewayLog::open(dir.path(), LogLimits::default()).unwrap();
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                log.publish(verdict(&format!("r{i}"), Decision::Approved))
                    .await
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=500).collect::<Vec<u64>>());
    let stats = log.stats();
    assert_eq!(stats.verdicts, 500);
}

/// Queues `events` before a fresh writer wakes, runs it to the end, and
/// returns each publication's answer and what the log shared.
fn one_batch(events: Vec<Event>) -> (Vec<Result<u64, PublishError>>, Arc<Shared>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 0).unwrap();
    let loaded = store.load().unwrap();
    let shared = Arc::new(Shared::new(loaded.log_id, LogLimits::default(), 0, 0));
    let (requests, received) = mpsc::channel();
    let mut answers = Vec::new();
    for event in events {
        let (reply, answer) = oneshot::channel();
        requests
            .send((Request::Publish { event, reply }, None))
            .unwrap();
        answers.push(answer);
    }
    drop(requests);
    let writer = Writer {
        store,
        shared: Arc::clone(&shared),
        clock: Arc::new(|| 0),
        max_verdicts: 1_000,
        verdict_ttl_ms: i64::MAX,
        verdicts: 0,
        last_sweep_ms: i64::MIN,
    };
    writer.run(received);
    let answers = answers
        .into_iter()
        .map(|mut a| a.try_recv().unwrap())
        .collect();
    (answers, shared)
}

/// Group commit, deterministically: requests that are queued when the
/// writer wakes go into one transaction (one fsync), each acknowledged.
#[test]
fn queued_publications_share_one_transaction() {
    let events = (0..300)
        .map(|i| verdict(&format!("r{i}"), Decision::Denied))
        .collect();
    let (answers, shared) = one_batch(events);
    let seqs: Vec<u64> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(seqs, (1..=300).collect::<Vec<u64>>());
    let stats = shared.stats();
    assert_eq!(
        (stats.commits, stats.verdicts, stats.last_seq),
        (1, 300, 300)
    );
}

/// Both decisions in one transaction: the first in queue order stands, the
/// other sees it (the transaction reads its own writes).
#[test]
fn both_decisions_in_one_transaction_the_first_wins() {
    let (answers, shared) = one_batch(vec![
        verdict("r", Decision::Approved),
        verdict("r", Decision::Denied),
        verdict("r", Decision::Approved),
    ]);
    assert_eq!(answers[0], Ok(1));
    assert!(matches!(
        answers[1],
        Err(PublishError::AlreadyDecided { seq: 1, .. })
    ));
    assert_eq!(answers[2], Ok(1));
    assert_eq!(shared.stats().last_seq, 1);
}

/// A signed verdict after an unsigned one of the same decision is not "the
/// same": sinks that require the key never apply the unsigned one, so the
/// reviewer is told what stands instead of being told it is published.
#[tokio::test]
async fn the_same_decision_by_another_signer_is_not_the_same_verdict() {
    let log = GatewayLog::in_memory(LogLimits::default()).unwrap();
    assert_eq!(log.publish(verdict("r", Decision::Approved)).await, Ok(1));
    let signed = Event::ApprovalResolved(ApprovalResolved {
        request_id: "r".into(),
        decision: Decision::Approved as i32,
        key_id: "alice".into(),
        signature: vec![7; 64],
        ..Default::default()
    });
    let refused = log.publish(signed.clone()).await.unwrap_err();
    assert_eq!(
        refused,
        PublishError::AlreadyDecided {
            decision: Decision::Approved as i32,
            key_id: String::new(),
            seq: 1
        }
    );
    assert!(
        refused.to_string().contains("(seq 1, unsigned)"),
        "{refused}"
    );
    // Signed first: the same key again is the same verdict.
    let log = GatewayLog::in_memory(LogLimits::default()).unwrap();
    assert_eq!(log.publish(signed.clone()).await, Ok(1));
    assert_eq!(log.publish(signed).await, Ok(1));
}

/// A damaged stored event (the newest, or one in the middle) never stops
/// the log: numbering goes on after the stored last seq, and replay starts
/// after the damage so the retained seqs stay consecutive.
#[tokio::test]
async fn a_damaged_stored_event_does_not_stop_the_log() {
    for damaged in [3, 5] {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let log = GatewayLog::open(dir.path(), LogLimits::default()).unwrap();
            for i in 0..5 {
                log.publish(invalidation(&format!("a{i}"))).await.unwrap();
            }
            log.log_id()
        };
        let db = rusqlite::Connection::open(dir.path().join(crate::store::DATABASE_FILE)).unwrap();
        db.execute(
            "UPDATE events SET body = x'ffffffff' WHERE seq = ?1",
            [damaged as i64],
        )
        .unwrap();
        drop(db);
        let log = GatewayLog::open(dir.path(), LogLimits::default()).unwrap();
        assert_eq!(log.log_id(), id);
        assert_eq!(
            log.publish(invalidation("next")).await,
            Ok(6),
            "damaged {damaged}"
        );
        let (_, backlog, _) = log.follow(0, id);
        let seqs: Vec<u64> = backlog.iter().map(|e| e.seq).collect();
        let expected: Vec<u64> = (damaged + 1..=6).collect();
        assert_eq!(seqs, expected, "damaged {damaged}");
    }
}
