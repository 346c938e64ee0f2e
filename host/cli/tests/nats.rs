//! The CLI over NATS JetStream (DESIGN section 10), through the real binary
//! and a real `nats-server` on loopback: a durable wait (a fresh `wait`
//! process gets a verdict published before it started), first-wins in the
//! log (`resolve` exits 4 with the verdict that stands), a stateless
//! `gateway --nats` serving the same log, and a wait whose NATS is never
//! reachable (it ends `DECISION_PENDING` and exits 3).

mod common;

use approval_tests::nats::{Node, scratch};
use common::{Gateway, bin, free_port};
use std::process::Output;

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run approval-sink")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_fresh_wait_gets_the_stored_verdict_and_the_log_keeps_the_first() {
    let dir = scratch("cli");
    let node = Node::single(&dir);
    let nats = node.url();

    let out = run(&[
        "resolve",
        "--nats",
        &nats,
        "--request-id",
        "send-email-1",
        "--approve",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout(&out).contains("send-email-1 DECISION_APPROVED (seq 1)"),
        "{out:?}"
    );

    // A new process, after the verdict: settles from the log at once.
    let out = run(&[
        "wait",
        "--nats",
        &nats,
        "--request-id",
        "send-email-1",
        "--timeout",
        "60s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out).trim(), "DECISION_APPROVED reviewer=cli");

    // The same decision again: idempotent. The other: refused, exit 4.
    let out = run(&[
        "resolve",
        "--nats",
        &nats,
        "--request-id",
        "send-email-1",
        "--approve",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("(seq 1)"), "{out:?}");
    let out = run(&[
        "resolve",
        "--nats",
        &nats,
        "--request-id",
        "send-email-1",
        "--deny",
    ]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(
        stdout(&out).contains("DECISION_APPROVED already stands for send-email-1 (seq 1)"),
        "{out:?}"
    );

    // A stateless gateway over the same log serves gRPC clients: its
    // subscribers get the stream, its Resolve publishes conditionally.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _gateway = Gateway::start_with(port, &["--nats", &nats]);
    let out = run(&[
        "resolve",
        "--gateway",
        &url,
        "--request-id",
        "send-email-1",
        "--deny",
    ]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let out = run(&[
        "resolve",
        "--gateway",
        &url,
        "--request-id",
        "wire-2",
        "--deny",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = run(&[
        "wait",
        "--gateway",
        &url,
        "--request-id",
        "wire-2",
        "--timeout",
        "60s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout(&out).trim(), "DECISION_DENIED reviewer=cli");
}

#[test]
fn a_wait_whose_nats_is_never_reachable_ends_pending_and_exits_3() {
    let nowhere = format!("nats://127.0.0.1:{}", free_port());
    let out = run(&[
        "wait",
        "--nats",
        &nowhere,
        "--request-id",
        "r-1",
        "--timeout",
        "2s",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(stdout(&out).trim(), "DECISION_PENDING");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("never reached"),
        "{out:?}"
    );
}
