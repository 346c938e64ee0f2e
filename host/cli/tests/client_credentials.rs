//! The clients' side of "Gateway II" through the real binary (SPEC.md §8,
//! §10): no credential is sent in clear, a TLS endpoint that never answers
//! is given up within the connect deadline, and `wait --timeout 0s` still
//! tells a reached gateway from an unreachable one.

mod common;

use common::{Gateway, bin, free_port};
use std::process::Output;
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run the binary")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The finding: `--token-file`, `--ca` or `--client-cert` with an
/// `http://` URL sent the token in plaintext. Refused before connecting.
#[test]
fn credentials_are_never_sent_over_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("review.token");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef\n").unwrap();
    let token = token.display().to_string();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not read: refused before").unwrap();
    let ca = ca.display().to_string();
    // TEST-NET-1: never reachable, so only the check can answer at once.
    let remote = "http://192.0.2.1:50051";
    let cases: [&[&str]; 4] = [
        &[
            "resolve",
            "--gateway",
            remote,
            "--request-id",
            "r",
            "--approve",
            "--token-file",
            &token,
        ],
        &[
            "wait",
            "--gateway",
            remote,
            "--request-id",
            "r",
            "--timeout",
            "30s",
            "--token-file",
            &token,
        ],
        &["invalidate", "--gateway", remote, "--token-file", &token],
        &[
            "resolve",
            "--gateway",
            "http://127.0.0.1:1",
            "--request-id",
            "r",
            "--approve",
            "--ca",
            &ca,
        ],
    ];
    for args in cases {
        let started = Instant::now();
        let out = run(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
        assert!(stderr(&out).contains("in clear"), "{args:?}: {out:?}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "refused at once: {args:?}"
        );
    }
}

/// A token over `http://` to this machine is fine (tokens are required on
/// loopback too).
#[test]
fn a_token_over_http_to_loopback_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["tokens", "--dir", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let review = dir.path().join("review.token").display().to_string();
    let subscribe = dir.path().join("subscribe.token").display().to_string();
    let port = free_port();
    let _gateway = Gateway::start_exactly(
        port,
        &[
            "--in-memory",
            "--review-token-file",
            &review,
            "--subscribe-token-file",
            &subscribe,
        ],
    );
    let url = format!("http://localhost:{port}");
    let out = run(&[
        "resolve",
        "--gateway",
        &url,
        "--request-id",
        "r",
        "--deny",
        "--token-file",
        &review,
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// The finding: a TLS handshake against an endpoint that accepts and never
/// answers hung 55 s. Given up within the 10 s connect deadline (the guard
/// below is generous: it catches a hang, it does not time the deadline).
#[test]
fn a_tls_endpoint_that_never_answers_is_given_up() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", silent.local_addr().unwrap());
    // Accept and hold every connection, never writing a byte.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let out = run(&[
        "resolve",
        "--gateway",
        &url,
        "--request-id",
        "r",
        "--approve",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(stderr(&out).contains("within 10s"), "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
}

/// The finding: `wait --timeout 0s` against a live gateway exited 3 ("never
/// reached"); it waits for its first connect and exits 2 (pending).
#[test]
fn a_zero_timeout_wait_on_a_live_gateway_is_pending() {
    let port = free_port();
    let _gateway = Gateway::start(port);
    let url = format!("http://127.0.0.1:{port}");
    let out = run(&[
        "wait",
        "--gateway",
        &url,
        "--request-id",
        "r",
        "--timeout",
        "0s",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "DECISION_PENDING"
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = run(&[
        "wait",
        "--gateway",
        &dead,
        "--request-id",
        "r",
        "--timeout",
        "0s",
    ]);
    assert_eq!(out.status.code(), Some(3), "never reached: {out:?}");
}
