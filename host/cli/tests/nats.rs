//! The CLI over NATS JetStream (SPEC.md §5.4, §9), through the real binary
//! and a real `nats-server` on loopback: a durable wait (a fresh `wait`
//! process gets a verdict published before it started), first-wins in the
//! log (`resolve` exits 4 with the verdict that stands), a stateless
//! `gateway --nats` serving the same log, and a wait whose NATS is never
//! reachable (it ends `DECISION_PENDING` and exits 3).

mod common;

use approval_tests::nats::{Node, scratch};
use common::{Gateway, bin, free_port};

/// Runs `approval-sink <command> <via...> --request-id <id> <extra...>`;
/// returns its exit code, stdout and stderr.
fn run(command: &str, via: &[&str], id: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = bin()
        .arg(command)
        .args(via)
        .args(["--request-id", id])
        .args(extra)
        .output()
        .expect("run approval-sink");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_fresh_wait_gets_the_stored_verdict_and_the_log_keeps_the_first() {
    let dir = scratch("cli");
    let node = Node::single(&dir);
    let url = node.url();
    let nats = ["--nats", url.as_str()];

    let (code, out, err) = run("resolve", &nats, "send-email-1", &["--approve"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("send-email-1 DECISION_APPROVED (seq 1)"),
        "{out}"
    );

    // A new process, after the verdict: settles from the log at once.
    let (code, out, err) = run("wait", &nats, "send-email-1", &["--timeout", "60s"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out.trim(), "DECISION_APPROVED reviewer=cli");

    // The same decision again: idempotent. The other: refused, exit 4.
    let (code, out, err) = run("resolve", &nats, "send-email-1", &["--approve"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("(seq 1)"), "{out}");
    let (code, out, err) = run("resolve", &nats, "send-email-1", &["--deny"]);
    assert_eq!(code, Some(4), "{out}{err}");
    assert!(
        out.contains("DECISION_APPROVED already stands for send-email-1 (seq 1)"),
        "{out}"
    );

    // A stateless gateway over the same log serves gRPC clients: its
    // subscribers get the stream, its Resolve publishes conditionally.
    let port = free_port();
    let gateway_url = format!("http://127.0.0.1:{port}");
    let _gateway = Gateway::start_with(port, &["--nats", &url]);
    let grpc = ["--gateway", gateway_url.as_str()];
    let (code, out, err) = run("resolve", &grpc, "send-email-1", &["--deny"]);
    assert_eq!(code, Some(4), "{out}{err}");
    let (code, out, err) = run("resolve", &grpc, "wire-2", &["--deny"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = run("wait", &grpc, "wire-2", &["--timeout", "60s"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(out.trim(), "DECISION_DENIED reviewer=cli");
}

#[test]
fn a_wait_whose_nats_is_never_reachable_ends_pending_and_exits_3() {
    let nowhere = format!("nats://127.0.0.1:{}", free_port());
    let (code, out, err) = run("wait", &["--nats", &nowhere], "r-1", &["--timeout", "2s"]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert_eq!(out.trim(), "DECISION_PENDING");
    assert!(err.contains("never reached"), "{err}");
}

/// The finding of "Gateway II": with an unsigned verdict stored on the
/// subject by someone bypassing the gateways, `resolve --nats --approve
/// --signing-key` answered `published (seq 1)` although nothing was stored.
/// The stored verdict is verified: a forgery is reported (exit 5), by the
/// CLI and by a `gateway --nats --trusted-key`, never as success.
#[test]
fn a_forged_verdict_in_the_log_is_reported_never_taken_for_success() {
    let dir = scratch("cli-forgery");
    let node = Node::single(&dir);
    let url = node.url();
    let nats = ["--nats", url.as_str()];
    let keys = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "keygen",
            "--id",
            "alice",
            "--dir",
            &keys.path().display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let key = keys.path().join("alice.key").display().to_string();
    let public = keys.path().join("alice.pub").display().to_string();

    // The forger: an unsigned approval straight into the log.
    let (code, out, err) = run("resolve", &nats, "wire-9", &["--approve"]);
    assert_eq!(code, Some(0), "{out}{err}");
    for decision in ["--approve", "--deny"] {
        let (code, out, err) = run(
            "resolve",
            &nats,
            "wire-9",
            &[decision, "--signing-key", &key, "--trusted-key", &public],
        );
        assert_eq!(code, Some(5), "{decision}: {out}{err}");
        assert!(
            out.starts_with("FORGERY: the verdict stored for wire-9 (seq 1)"),
            "{out}"
        );
    }
    // A verdict alice signed stands as hers: the same again is fine.
    let (code, out, err) = run(
        "resolve",
        &nats,
        "send-1",
        &["--deny", "--signing-key", &key, "--trusted-key", &public],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = run(
        "resolve",
        &nats,
        "send-1",
        &["--deny", "--signing-key", &key, "--trusted-key", &public],
    );
    assert_eq!(code, Some(0), "{out}{err}");

    // A stateless gateway that trusts alice says the same over gRPC.
    let port = free_port();
    let gateway_url = format!("http://127.0.0.1:{port}");
    let _gateway = Gateway::start_with(port, &["--nats", &url, "--trusted-key", &public]);
    let grpc = ["--gateway", gateway_url.as_str()];
    let (code, out, err) = run(
        "resolve",
        &grpc,
        "wire-9",
        &["--approve", "--signing-key", &key],
    );
    assert_eq!(code, Some(5), "{out}{err}");
    assert!(out.contains("is a forgery"), "{out}");
    let (code, out, err) = run(
        "resolve",
        &grpc,
        "send-1",
        &["--deny", "--signing-key", &key],
    );
    assert_eq!(code, Some(0), "{out}{err}");
}
