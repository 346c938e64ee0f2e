//! Trust on the wire through the library (SPEC.md §8): a gateway with
//! TLS (a test CA made here with rcgen) and a subscriber token, and
//! `GrpcSource`s that get it right or wrong. A refused source is typed
//! (`PumpStats::refused`), retries only at its backoff (no storm), and the
//! waiting agent is never decided by anything it could not read.

use approval_gateway::{Gateway, GatewayLog, LogLimits, ServerTls, Token};
use approval_grpc::{ClientTls, GrpcSource};
use approval_host::sources::PumpConfig;
use approval_host::{Decision, Outcome, Verdict};
use approval_tests::events::verdict;
use approval_tests::sinks::manual_sink;
use approval_tests::time::{HOUR, eventually};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A CA and a server certificate for 127.0.0.1: (ca, cert, key) PEM.
fn pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// The subscribers' token of [`secured_gateway`].
const SUBSCRIBE_TOKEN: &str = "subscribe-s3cret-0123456789";

/// A TLS gateway requiring `token` on Subscribe (and another on
/// `ReviewService`); its URL and log.
async fn secured_gateway(cert: String, key: String, token: &str) -> (String, Arc<GatewayLog>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let log = GatewayLog::in_memory(LogLimits::retaining(1024)).unwrap();
    let gateway = Gateway::new(Arc::clone(&log))
        .review_token(Token::new("review-s3cret-0123456789").unwrap())
        .subscribe_token(Token::new(token).unwrap())
        .tls(ServerTls {
            cert_pem: cert,
            key_pem: key,
            client_ca_pem: None,
        });
    tokio::spawn(gateway.serve(listener, std::future::pending()));
    (url, log)
}

fn backoff() -> PumpConfig {
    PumpConfig {
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(5),
        ..PumpConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_client_is_served_and_wrong_ones_are_refused_without_a_storm() {
    let (ca, cert, key) = pki();
    let (url, log) = secured_gateway(cert, key, SUBSCRIBE_TOKEN).await;
    log.publish(verdict("req-1", Decision::Approved as i32))
        .await
        .unwrap();
    let tls = ClientTls {
        ca_pem: Some(ca),
        ..ClientTls::default()
    };

    // No CA (system roots only): the handshake is refused, typed.
    let (lost, _c1) = manual_sink();
    let unknown_ca = lost.wait("req-1", HOUR);
    let pump = lost.pump_with(
        GrpcSource::new(url.clone()).bearer_token(SUBSCRIBE_TOKEN),
        backoff(),
    );
    eventually(|| async { pump.stats().refused > 0 }).await;
    // The right CA, no token: UNAUTHENTICATED, typed.
    let (tokenless, _c2) = manual_sink();
    let no_token = tokenless.wait("req-1", HOUR);
    let pump2 = tokenless.pump_with(GrpcSource::new(url.clone()).tls(tls.clone()), backoff());
    eventually(|| async { pump2.stats().refused > 0 }).await;
    assert!(
        pump2
            .stats()
            .last_error
            .unwrap_or_default()
            .contains("bearer token"),
        "{:?}",
        pump2.stats()
    );
    // Both keep retrying at their backoff only: over two seconds, a handful
    // of attempts (0, 0.1, 0.3, 0.7, 1.5 s with ±20 % jitter), not a storm.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for stats in [pump.stats(), pump2.stats()] {
        assert!(stats.failures <= 8, "{stats:?}");
        assert_eq!(stats.connects, 0, "{stats:?}");
    }
    // Neither agent was decided by anything.
    assert_eq!((lost.waiter_count(), tokenless.waiter_count()), (1, 1));

    // The right CA and token: served, the verdict arrives.
    let (sink, _c3) = manual_sink();
    let served = sink.wait("req-1", HOUR);
    let _pump3 = sink.pump_with(
        GrpcSource::new(url).tls(tls).bearer_token(SUBSCRIBE_TOKEN),
        backoff(),
    );
    assert_eq!(served.await, Ok(Outcome::Decided(Verdict::Approved)));
    drop((unknown_ca, no_token));
}
