//! The trust story through the real binary (SPEC.md §8, S17): keygen's
//! files, TLS with a test CA made here (rcgen; no key is checked in), bearer
//! tokens, signed verdicts and every exit code of `resolve` and `wait`.

mod common;

use common::{Gateway, bin, free_port};
use std::path::PathBuf;
use std::process::Output;

/// A scratch directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("approval-trust-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn path(&self, file: &str) -> String {
        self.0.join(file).display().to_string()
    }

    fn write(&self, file: &str, text: &str) -> String {
        std::fs::write(self.0.join(file), text).unwrap();
        self.path(file)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run the binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn keygen(dir: &Dir, id: &str) {
    let out = run(&["keygen", "--id", id, "--dir", &dir.path("")]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as
/// PEM files in `dir`: `ca.pem`, `server.pem`/`server.key`,
/// `client.pem`/`client.key`.
fn pki(dir: &Dir) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    dir.write("ca.pem", &ca.pem());
    for (name, san) in [("server", "127.0.0.1"), ("client", "agent-host")] {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![san.to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        dir.write(&format!("{name}.pem"), &cert.pem());
        dir.write(&format!("{name}.key"), &key.serialize_pem());
    }
}

#[test]
fn keygen_writes_an_openssl_compatible_key_and_a_pub_line() {
    let dir = Dir::new("keygen");
    keygen(&dir, "alice");
    let key = std::fs::read_to_string(dir.path("alice.key")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path("alice.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let public = std::fs::read_to_string(dir.path("alice.pub")).unwrap();
    let fields: Vec<&str> = public.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{public}");
    assert_eq!(&fields[..2], ["alice", "ed25519"]);
    assert_eq!(fields[2].len(), 44, "standard base64 of 32 bytes");
    // Never overwrites a key.
    let again = run(&["keygen", "--id", "alice", "--dir", &dir.path("")]);
    assert_eq!(again.status.code(), Some(3), "{again:?}");
}

/// The system's OpenSSL reads keygen's key (PKCS#8 v1, as `openssl genpkey
/// -algorithm ed25519` writes it; OpenSSL 3.0 refused the v2 form) and
/// derives the public key the `.pub` line holds.
#[test]
fn openssl_reads_the_key_and_finds_the_pub_lines_key() {
    let dir = Dir::new("openssl");
    keygen(&dir, "alice");
    let der = std::process::Command::new("openssl")
        .args(["pkey", "-in", &dir.path("alice.key"), "-outform", "DER"])
        .output()
        .expect("the system's openssl (the distribution's `openssl` package)");
    assert!(der.status.success(), "{der:?}");
    // RFC 8410's v1 encoding: version 0, the Ed25519 OID, the 32-byte seed.
    assert_eq!(der.stdout.len(), 48, "{:02x?}", der.stdout);
    assert_eq!(
        der.stdout[..16],
        [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20
        ]
    );
    let public = std::process::Command::new("openssl")
        .args([
            "pkey",
            "-in",
            &dir.path("alice.key"),
            "-pubout",
            "-outform",
            "DER",
        ])
        .output()
        .unwrap();
    assert!(public.status.success(), "{public:?}");
    let line = std::fs::read_to_string(dir.path("alice.pub")).unwrap();
    let trusted = approval_host::TrustedKey::parse(&line).unwrap();
    assert_eq!(
        public.stdout[public.stdout.len() - 32..],
        trusted.public_key
    );
}

/// `--id` names files: a path or a hidden name is refused before anything
/// is written, and an existing `.pub` is never overwritten (nor is a
/// private key written beside it).
#[test]
fn keygen_writes_only_plain_names_inside_its_dir_and_overwrites_nothing() {
    let dir = Dir::new("keygen-paths");
    std::fs::create_dir_all(dir.0.join("keys")).unwrap();
    for id in ["../escaped", "a/b", ".hidden", ""] {
        let out = run(&["keygen", "--id", id, "--dir", &dir.path("keys")]);
        assert_eq!(out.status.code(), Some(3), "{id:?}: {out:?}");
    }
    assert!(!dir.0.join("escaped.key").exists());
    assert!(!dir.0.join("escaped.pub").exists());
    assert_eq!(std::fs::read_dir(dir.0.join("keys")).unwrap().count(), 0);
    let line = "bob ed25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    dir.write("bob.pub", line);
    let out = run(&["keygen", "--id", "bob", "--dir", &dir.path("")]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(std::fs::read_to_string(dir.path("bob.pub")).unwrap(), line);
    assert!(!dir.0.join("bob.key").exists());
}

/// With trusted keys at both ends: unsigned and untrusted verdicts are
/// refused by the gateway (exit 3), the signed one approves and `wait`
/// names its reviewer and key, the same verdict again is fine (0), the
/// other one is refused with the standing verdict printed (4).
#[test]
fn signed_verdicts_end_to_end_with_every_resolve_exit_code() {
    let dir = Dir::new("signed");
    keygen(&dir, "alice");
    keygen(&dir, "mallory");
    let alice_pub = dir.path("alice.pub");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _gateway = Gateway::start_with(port, &["--trusted-key", &alice_pub]);
    let waiter = bin()
        .args([
            "wait",
            "--gateway",
            &url,
            "--request-id",
            "r1",
            "--timeout",
            "60s",
        ])
        .args(["--trusted-key", &alice_pub])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let resolve = |extra: &[&str]| {
        let mut args = vec!["resolve", "--gateway", &url, "--request-id", "r1"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let unsigned = resolve(&["--approve"]);
    assert_eq!(unsigned.status.code(), Some(3), "{unsigned:?}");
    let mallory = resolve(&["--approve", "--signing-key", &dir.path("mallory.key")]);
    assert_eq!(mallory.status.code(), Some(3), "{mallory:?}");
    let alice = resolve(&["--approve", "--signing-key", &dir.path("alice.key")]);
    assert_eq!(alice.status.code(), Some(0), "{alice:?}");
    let again = resolve(&["--approve", "--signing-key", &dir.path("alice.key")]);
    assert_eq!(again.status.code(), Some(0), "the same verdict: {again:?}");
    let flip = resolve(&["--deny", "--signing-key", &dir.path("alice.key")]);
    assert_eq!(flip.status.code(), Some(4), "{flip:?}");
    assert!(
        stdout(&flip).contains("DECISION_APPROVED already stands"),
        "{flip:?}"
    );

    let out = waiter.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "DECISION_APPROVED reviewer=alice key=alice");
    assert_eq!(out.status.code(), Some(0));
}

/// A gateway without trusted keys cannot tell forged from genuine, but it
/// keeps the first verdict final (S16): an unsigned approval published
/// first makes Alice's signed denial a conflict (4). A sink that trusts
/// Alice never acts on the unsigned approval: it ends `PENDING`, never
/// approved.
#[test]
fn a_sink_with_trusted_keys_never_acts_on_an_unsigned_first_verdict() {
    let dir = Dir::new("open");
    keygen(&dir, "alice");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _gateway = Gateway::start(port);
    let waiter = bin()
        .args([
            "wait",
            "--gateway",
            &url,
            "--request-id",
            "r2",
            "--timeout",
            "5s",
        ])
        .args(["--trusted-key", &dir.path("alice.pub")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let forged = run(&[
        "resolve",
        "--gateway",
        &url,
        "--request-id",
        "r2",
        "--approve",
    ]);
    assert_eq!(forged.status.code(), Some(0), "published: {forged:?}");
    let signed = run(&[
        "resolve",
        "--gateway",
        &url,
        "--request-id",
        "r2",
        "--deny",
        "--signing-key",
        &dir.path("alice.key"),
    ]);
    assert_eq!(
        signed.status.code(),
        Some(4),
        "the first stands: {signed:?}"
    );
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "DECISION_PENDING");
    assert_eq!(out.status.code(), Some(2));
}

/// TLS with a test CA and mTLS, plus both tokens: the right client is
/// served; a client without the CA, without a client certificate, or with a
/// wrong token is refused at once (exit 3), and nothing it sent is
/// published (the waiting agent is not approved by it).
#[test]
fn tls_and_tokens_refuse_every_wrong_client_at_once() {
    let dir = Dir::new("tls");
    pki(&dir);
    let review = dir.write("review.token", "  review-secret-0123456789\n");
    let subscribe = dir.write("subscribe.token", "subscribe-secret-0123456789");
    let wrong = dir.write("wrong.token", "guess");
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let (ca, cert, key) = (
        dir.path("ca.pem"),
        dir.path("client.pem"),
        dir.path("client.key"),
    );
    let _gateway = Gateway::start_with(
        port,
        &[
            "--tls-cert",
            &dir.path("server.pem"),
            "--tls-key",
            &dir.path("server.key"),
            "--client-ca",
            &ca,
            "--review-token-file",
            &review,
            "--subscribe-token-file",
            &subscribe,
        ],
    );
    let tls = ["--ca", &ca, "--client-cert", &cert, "--client-key", &key];
    let resolve = |decision: &str, token: &str, tls: &[&str]| {
        let mut args = vec!["resolve", "--gateway", &url, "--request-id", "r3", decision];
        args.extend_from_slice(&["--token-file", token]);
        args.extend_from_slice(tls);
        run(&args)
    };
    let wait = |token: &str, tls: &[&str], timeout: &str| {
        let mut args = vec![
            "wait",
            "--gateway",
            &url,
            "--request-id",
            "r3",
            "--timeout",
            timeout,
        ];
        args.extend_from_slice(&["--token-file", token]);
        args.extend_from_slice(tls);
        bin()
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };

    // Refused at once: well before their 60 s timeouts.
    let started = std::time::Instant::now();
    let no_ca = wait(
        &subscribe,
        &["--client-cert", &cert, "--client-key", &key],
        "60s",
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(
        no_ca.status.code(),
        Some(3),
        "a client without the CA: {no_ca:?}"
    );
    let bad_token = wait(&wrong, &tls, "60s").wait_with_output().unwrap();
    assert_eq!(
        bad_token.status.code(),
        Some(3),
        "wrong token: {bad_token:?}"
    );
    assert!(
        String::from_utf8_lossy(&bad_token.stderr).contains("refused"),
        "{bad_token:?}"
    );
    assert_eq!(
        stdout(&bad_token),
        "DECISION_PENDING",
        "one line, no decision"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "at once"
    );
    // Without a client certificate, TLS 1.3 lets the client finish its
    // handshake and the server then ends the connection, with a
    // CertificateRequired alert (refused: exit 3 at once) or, on some
    // attempts, a bare close the client cannot tell from a network fault.
    // The pump retries at its backoff and usually sees the alert within a
    // few attempts; if it never does, the gateway was never reached: exit 3
    // at the end of the wait. Either way, 3 and one line.
    let no_cert = wait(&subscribe, &["--ca", &ca], "20s")
        .wait_with_output()
        .unwrap();
    assert_eq!(
        no_cert.status.code(),
        Some(3),
        "no client certificate: {no_cert:?}"
    );
    assert_eq!(stdout(&no_cert), "DECISION_PENDING");

    // The right agent waits; a reviewer with a wrong token is refused and
    // publishes nothing; the right reviewer's denial arrives.
    let agent = wait(&subscribe, &tls, "60s");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let forged = resolve("--approve", &wrong, &tls);
    assert_eq!(forged.status.code(), Some(3), "{forged:?}");
    let swapped = resolve("--approve", &subscribe, &tls);
    assert_eq!(
        swapped.status.code(),
        Some(3),
        "the subscriber token cannot review"
    );
    let genuine = resolve("--deny", &review, &tls);
    assert_eq!(genuine.status.code(), Some(0), "{genuine:?}");
    assert!(
        stdout(&genuine).contains("(seq 1)"),
        "nothing published before: {genuine:?}"
    );
    let out = agent.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "DECISION_DENIED reviewer=cli");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_non_loopback_gateway_without_tls_and_tokens_refuses_to_start() {
    let out = run(&["gateway", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--insecure-dev"),
        "says how: {out:?}"
    );
    let tokens_only = run(&[
        "gateway",
        "--listen",
        "0.0.0.0:0",
        "--review-token-file",
        "/nonexistent",
        "--subscribe-token-file",
        "/nonexistent",
    ]);
    assert_eq!(
        tokens_only.status.code(),
        Some(3),
        "tokens without TLS: {tokens_only:?}"
    );
}

/// `demo --signed`: an attacker approves every answered request first, in
/// three ways; the sink trusts only the reviewer's key, rejects each
/// forgery and sees no wrong verdict (the demo itself exits non-zero on
/// any).
#[test]
fn the_signed_demo_rejects_every_forgery() {
    for gateway in [None, Some("local")] {
        let mut args = vec!["demo", "--signed", "--agents", "120", "--unanswered", "0"];
        if let Some(g) = gateway {
            args.extend_from_slice(&["--gateway", g]);
        }
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{gateway:?}: {out:?}");
        let summary = stdout(&out);
        let row = |name: &str| -> u64 {
            summary
                .lines()
                .find(|l| l.contains(name))
                .and_then(|l| l.split('|').nth(2))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} row in {summary}"))
        };
        assert_eq!(row("wrong verdicts"), 0);
        // One forgery per answered request, each rejected: at a gateway of
        // the demo's own (it verifies), else in the guest.
        assert_eq!(row("forged/unsigned rejected"), 120, "{summary}");
    }
}
