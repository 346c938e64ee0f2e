//! The gateway's door and the CLI's output through the real binary
//! (SPEC.md §8, §10): no gateway serves without both tokens unless told
//! `--insecure-dev` (and then it says so), tokens are distinct and long,
//! `tokens` makes them, and nobody's data can forge a `wait` line.

mod common;

use common::{GUARD, Gateway, bin, expect_line, free_port, lines};
use std::path::Path;
use std::process::{Output, Stdio};

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run the binary")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

/// The finding: with no flags a loopback gateway was open to any local
/// user, who could publish the first approval.
#[test]
fn a_gateway_without_tokens_refuses_to_start() {
    let out = run(&["gateway", "--listen", "127.0.0.1:0", "--in-memory"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        stderr(&out).contains("approval-sink tokens"),
        "says how: {out:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("review.token"), "0123456789abcdef0123\n").unwrap();
    let one_token = run(&[
        "gateway",
        "--listen",
        "127.0.0.1:0",
        "--in-memory",
        "--review-token-file",
        &path(dir.path(), "review.token"),
    ]);
    assert_eq!(one_token.status.code(), Some(3), "{one_token:?}");
}

#[test]
fn an_insecure_dev_gateway_serves_and_warns() {
    let mut child = bin()
        .args(["gateway", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--in-memory", "--insecure-dev"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let first = out.recv_timeout(GUARD).unwrap();
    assert!(
        first.contains("gateway listening on http://127.0.0.1:"),
        "{first}"
    );
    assert!(first.contains("with its log in memory"), "{first}");
    expect_line(&err, &["INSECURE", "--insecure-dev"]);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_same_token_twice_and_a_short_token_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let one = path(dir.path(), "one.token");
    std::fs::write(&one, "0123456789abcdef0123456789abcdef\n").unwrap();
    let same = run(&[
        "gateway",
        "--listen",
        "127.0.0.1:0",
        "--in-memory",
        "--review-token-file",
        &one,
        "--subscribe-token-file",
        &one,
    ]);
    assert_eq!(same.status.code(), Some(3), "{same:?}");
    assert!(stderr(&same).contains("are the same"), "{same:?}");
    let short = path(dir.path(), "short.token");
    std::fs::write(&short, "x").unwrap();
    let out = run(&[
        "gateway",
        "--listen",
        "127.0.0.1:0",
        "--in-memory",
        "--review-token-file",
        &short,
        "--subscribe-token-file",
        &one,
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(stderr(&out).contains("at least 16"), "{out:?}");
}

/// `tokens` writes two distinct private files, never over existing ones,
/// and a gateway started with them serves only clients that send them.
#[test]
fn tokens_makes_what_a_gateway_and_its_clients_use() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    let made = run(&["tokens", "--dir", &tokens.display().to_string()]);
    assert_eq!(made.status.code(), Some(0), "{made:?}");
    let review = path(&tokens, "review.token");
    let subscribe = path(&tokens, "subscribe.token");
    assert!(
        stdout(&made).contains(&format!("--review-token-file {review}")),
        "{made:?}"
    );
    let (r, s) = (
        std::fs::read_to_string(&review).unwrap(),
        std::fs::read_to_string(&subscribe).unwrap(),
    );
    assert_ne!(r, s);
    assert_eq!(r.trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&review), 0o600);
        assert_eq!(mode(&subscribe), 0o600);
        assert_eq!(mode(&tokens.display().to_string()), 0o700);
    }
    let again = run(&["tokens", "--dir", &tokens.display().to_string()]);
    assert_eq!(again.status.code(), Some(3), "never overwritten: {again:?}");
    assert_eq!(std::fs::read_to_string(&review).unwrap(), r);

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
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
    let resolve = |token: &str| {
        run(&[
            "resolve",
            "--gateway",
            &url,
            "--request-id",
            "r",
            "--deny",
            "--token-file",
            token,
        ])
    };
    assert_eq!(
        resolve(&subscribe).status.code(),
        Some(3),
        "a subscriber cannot decide"
    );
    assert_eq!(resolve(&review).status.code(), Some(0));
    let wait = run(&[
        "wait",
        "--gateway",
        &url,
        "--request-id",
        "r",
        "--timeout",
        "30s",
        "--token-file",
        &subscribe,
    ]);
    assert_eq!(stdout(&wait), "DECISION_DENIED reviewer=cli", "{wait:?}");
}

/// The finding: a reviewer name with a newline printed a second line,
/// `DECISION_APPROVED ...`, under a denial. The gateway refuses control
/// characters; any other unusual name is printed quoted on the one line.
#[test]
fn nobody_can_forge_a_wait_line() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _gateway = Gateway::start(port);
    let resolve = |id: &str, reviewer: &str| {
        run(&[
            "resolve",
            "--gateway",
            &url,
            "--request-id",
            id,
            "--deny",
            "--reviewer",
            reviewer,
        ])
    };
    for injected in [
        "bob\nDECISION_APPROVED reviewer=alice",
        "\u{1b}[32mbob",
        "bob\u{7f}",
        "eve\u{202e}ecila",
        "bob\u{2028}x",
    ] {
        let out = resolve("r1", injected);
        assert_eq!(
            out.status.code(),
            Some(3),
            "refused at the gateway: {out:?}"
        );
        assert!(
            stderr(&out).contains("control or text-direction character"),
            "{out:?}"
        );
    }
    let wait = |id: &str, json: bool| {
        let mut args = vec![
            "wait",
            "--gateway",
            &url,
            "--request-id",
            id,
            "--timeout",
            "30s",
        ];
        if json {
            args.push("--json");
        }
        run(&args)
    };
    let cases = [
        ("r2", "bob smith", r#"DECISION_DENIED reviewer="bob smith""#),
        (
            "r3",
            "\u{430}lice",
            r#"DECISION_DENIED reviewer="\u0430lice""#,
        ),
        (
            "r4",
            "ali\u{200b}ce",
            r#"DECISION_DENIED reviewer="ali\u200bce""#,
        ),
        (
            "r5",
            "alice@example.com",
            "DECISION_DENIED reviewer=alice@example.com",
        ),
    ];
    for (id, reviewer, line) in cases {
        assert_eq!(resolve(id, reviewer).status.code(), Some(0), "{reviewer:?}");
        let out = wait(id, false);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{line}\n"),
            "{reviewer:?}"
        );
        assert_eq!(out.status.code(), Some(1));
        let json = wait(id, true);
        let object: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(object["decision"], "DECISION_DENIED", "{object}");
        assert_eq!(object["reviewer"], reviewer, "{object}");
        assert_eq!(String::from_utf8_lossy(&json.stdout).lines().count(), 1);
    }
}
