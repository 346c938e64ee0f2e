//! The README's two-terminal flow through the real binary, across a gateway
//! restart with a fresh in-memory log (S16): the restarted gateway's
//! sequence numbers start at 1 again, and the waiting agent must still get
//! the reviewer's approval (it used to print DECISION_PENDING).

mod common;

use common::{GUARD, Gateway, bin, expect_line, free_port, lines};
use std::process::Stdio;
use std::time::Duration;

fn resolve(url: &str, request_id: &str) -> String {
    let out = bin()
        .args([
            "resolve",
            "--gateway",
            url,
            "--request-id",
            request_id,
            "--approve",
        ])
        .output()
        .expect("run resolve");
    assert!(out.status.success(), "resolve {request_id}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn wait_survives_a_gateway_restarted_with_a_fresh_log() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let gateway = Gateway::start(port);
    for i in 1..=5 {
        resolve(&url, &format!("old-{i}"));
    }
    let mut wait = bin()
        .args([
            "wait",
            "--gateway",
            &url,
            "--request-id",
            "fresh-1",
            "--timeout",
            "60s",
        ])
        .env("RUST_LOG", "approval_host=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wait");
    let stdout = lines(wait.stdout.take().unwrap());
    let stderr = lines(wait.stderr.take().unwrap());
    expect_line(&stderr, &["event source connected", "last_seq=0"]);
    // The five old events arrive with the subscription's backlog.
    std::thread::sleep(Duration::from_secs(2));
    drop(gateway);

    let _gateway = Gateway::start(port);
    // The sink resumes from the old log's seq 5: proof it had applied them.
    expect_line(&stderr, &["event source connected", "last_seq=5"]);
    let published = resolve(&url, "fresh-1");
    assert!(published.contains("(seq 1)"), "a fresh log: {published}");

    let decision = stdout
        .recv_timeout(GUARD)
        .expect("wait prints its decision");
    // One line: the decision, then who decided (the CLI reviewer's default
    // name), as the trust issue fixed the format.
    assert_eq!(decision, "DECISION_APPROVED reviewer=cli");
    let status = wait.wait().expect("wait exits");
    assert_eq!(status.code(), Some(0), "exit 0: approved");
}

/// `wait`'s exit codes never read a failure as a verdict: a usage error and
/// a gateway never reached are 3 (not 2, "pending", or 1, "denied").
#[test]
fn wait_exit_codes_tell_not_served_from_pending() {
    let usage = bin()
        .args(["wait", "--request-id", "x", "--timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(3), "usage error: {usage:?}");
    let help = bin().args(["wait", "--help"]).output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let dead = format!("http://127.0.0.1:{}", free_port());
    let unreached = wait_one_second(&dead);
    assert_eq!(
        String::from_utf8_lossy(&unreached.stdout).trim(),
        "DECISION_PENDING"
    );
    assert_eq!(
        unreached.status.code(),
        Some(3),
        "never reached: {unreached:?}"
    );
    let port = free_port();
    let _gateway = Gateway::start(port);
    let pending = wait_one_second(&format!("http://127.0.0.1:{port}"));
    assert_eq!(pending.status.code(), Some(2), "reached, nobody answered");
}

/// `wait` on request `x` at `url` for one second.
fn wait_one_second(url: &str) -> std::process::Output {
    bin()
        .args([
            "wait",
            "--gateway",
            url,
            "--request-id",
            "x",
            "--timeout",
            "1s",
        ])
        .output()
        .unwrap()
}
