//! The durable gateway through the real binary (SPEC.md §9.1, S16): what
//! it acknowledged survives `kill -9`, the first verdict stays final across
//! a restart, and one directory serves one gateway.

mod common;

use common::{GUARD, Gateway, bin, expect_line, free_port, lines};
use std::path::Path;
use std::process::{Child, Output, Stdio};

fn resolve(url: &str, request_id: &str, decision: &str) -> Output {
    bin()
        .args([
            "resolve",
            "--gateway",
            url,
            "--request-id",
            request_id,
            decision,
        ])
        .output()
        .expect("run resolve")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A subscribed `wait` on `request_id` (returns once it is connected).
fn subscribed_wait(url: &str, request_id: &str) -> Child {
    let mut wait = bin()
        .args([
            "wait",
            "--gateway",
            url,
            "--request-id",
            request_id,
            "--timeout",
            "120s",
        ])
        .env("RUST_LOG", "approval_host=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wait");
    let stderr = lines(wait.stderr.take().unwrap());
    expect_line(&stderr, &["event source connected"]);
    // Keep reading its log so the child never blocks on a full pipe.
    std::thread::spawn(move || while stderr.recv().is_ok() {});
    wait
}

fn durable(port: u16, dir: &Path) -> Gateway {
    Gateway::start_with(port, &["--data-dir", &dir.display().to_string()])
}

/// The finding of "Gateway I": agents already waiting when the gateway was
/// killed right after acknowledging their denials were left `PENDING`, and
/// a restarted gateway forgot which verdict came first.
#[test]
fn acknowledged_verdicts_survive_kill_9_and_the_first_still_wins() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gateway");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let gateway = durable(port, &data);
    let ids: Vec<String> = (0..6).map(|i| format!("transfer-{i}")).collect();
    let agents: Vec<Child> = ids.iter().map(|id| subscribed_wait(&url, id)).collect();
    for id in &ids {
        let out = resolve(&url, id, "--deny");
        assert_eq!(out.status.code(), Some(0), "acknowledged: {out:?}");
    }
    gateway.kill_9();

    let _gateway = durable(port, &data);
    for (id, agent) in ids.iter().zip(agents) {
        let out = agent.wait_with_output().unwrap();
        assert_eq!(stdout(&out), "DECISION_DENIED reviewer=cli", "{id}");
        assert_eq!(out.status.code(), Some(1), "{id}");
    }
    // The denial is still first: the other decision is refused (4) with
    // the standing verdict, and a new agent sees the denial.
    let flip = resolve(&url, &ids[0], "--approve");
    assert_eq!(flip.status.code(), Some(4), "{flip:?}");
    assert!(
        stdout(&flip).contains("DECISION_DENIED already stands"),
        "{flip:?}"
    );
    // Agents that start only now get every acknowledged denial from the
    // restarted log. (The agents above were subscribed before the kill and
    // most likely had theirs already: a subscriber gets an event only once
    // it is committed.)
    for id in &ids {
        let late = bin()
            .args([
                "wait",
                "--gateway",
                &url,
                "--request-id",
                id,
                "--timeout",
                "30s",
            ])
            .output()
            .unwrap();
        assert_eq!(
            stdout(&late),
            "DECISION_DENIED reviewer=cli",
            "{id}: {late:?}"
        );
    }
}

/// The restarted gateway goes on with the same log: its sequence continues
/// (seq 4 after three). That the log id is the same too is read through
/// the API in `approval-gateway`'s `a_durable_log_survives_its_process`.
#[test]
fn a_restart_continues_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let gateway = durable(port, dir.path());
    for i in 0..3 {
        assert_eq!(
            resolve(&url, &format!("old-{i}"), "--approve")
                .status
                .code(),
            Some(0)
        );
    }
    drop(gateway);
    let _gateway = durable(port, dir.path());
    let next = resolve(&url, "new", "--approve");
    assert!(
        stdout(&next).ends_with("(seq 4)"),
        "the same log goes on: {next:?}"
    );
}

/// The finding: invalidations pushed a denial out of the replay retention,
/// and a later approval was published and waited on. The denial stands,
/// and a new wait still gets it, through `Lookup` (its event is no longer
/// in any replay).
#[test]
fn an_invalidation_flood_does_not_unsettle_a_denial() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _gateway = Gateway::start_with(port, &["--retention", "2"]);
    assert_eq!(resolve(&url, "wire-50k", "--deny").status.code(), Some(0));
    for i in 0..5 {
        let out = bin()
            .args([
                "invalidate",
                "--gateway",
                &url,
                "--agent-id",
                &format!("agent-{i}"),
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let flip = resolve(&url, "wire-50k", "--approve");
    assert_eq!(flip.status.code(), Some(4), "{flip:?}");
    let late = bin()
        .args([
            "wait",
            "--gateway",
            &url,
            "--request-id",
            "wire-50k",
            "--timeout",
            "30s",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&late), "DECISION_DENIED reviewer=cli", "{late:?}");
}

#[test]
fn a_second_gateway_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = durable(free_port(), dir.path());
    let second = bin()
        .args(["gateway", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args([
            "--data-dir",
            &dir.path().display().to_string(),
            "--insecure-dev",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_guarded(second);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use by another gateway"),
        "{out:?}"
    );
}

/// A full verdict record refuses a new verdict (the resolve fails, exit 3,
/// `RESOURCE_EXHAUSTED`) and forgets none of the recorded ones.
#[test]
fn a_full_verdict_record_refuses_and_forgets_nothing() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _gateway = Gateway::start_with(port, &["--max-verdicts", "2"]);
    for id in ["a", "b"] {
        assert_eq!(resolve(&url, id, "--deny").status.code(), Some(0));
    }
    let refused = resolve(&url, "c", "--approve");
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("records 2 verdicts"),
        "{refused:?}"
    );
    for id in ["a", "b"] {
        assert_eq!(
            resolve(&url, id, "--approve").status.code(),
            Some(4),
            "{id}"
        );
    }
}

/// Waits for a child that should exit on its own, killing it past the
/// guard (a hang is a failure, not a wait forever).
fn wait_guarded(mut child: Child) -> Output {
    let deadline = std::time::Instant::now() + GUARD;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after {GUARD:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}
