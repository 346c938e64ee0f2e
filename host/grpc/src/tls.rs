//! [`ClientTls`] and the channel every client of the gateway builds
//! ([`connect_endpoint`], [`connect_channel`]): TLS through rustls with
//! `ring`, the system's roots unless a CA is given, keepalive, a connect
//! deadline that covers the TLS handshake, and [`check_credentials`]: no
//! credential is ever sent in clear (SPEC.md §8).

use crate::refusal::connect_error;
use approval_host::sources::SourceError;
use std::time::Duration;
use tonic::codegen::http::Uri;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// The longest a client waits for a connection to be ready, TCP and TLS
/// handshake included: an endpoint that accepts and never answers is given
/// up after this.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

/// TLS settings of a gRPC client (rustls with `ring`): whom to trust and,
/// for mTLS, who we are. PEM text throughout.
#[derive(Clone, Default)]
pub struct ClientTls {
    /// CA certificates to trust instead of the system's roots.
    pub ca_pem: Option<String>,
    /// A client certificate chain and its private key (mTLS).
    pub identity_pem: Option<(String, String)>,
    /// The server name to verify, if not the endpoint's host.
    pub domain: Option<String>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("ClientTls")
            .field("custom_ca", &self.ca_pem.is_some())
            .field("client_identity", &self.identity_pem.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}

impl ClientTls {
    /// tonic's config: the given CA, or the system's roots.
    fn tonic_config(&self) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_pem {
            Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
            None => config.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity_pem {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        config
    }
}

/// Refuses a client configuration that would send a credential in clear:
/// TLS settings (a CA, a client certificate) with an `http://` URL (the
/// connection would silently be plaintext), and a bearer token over
/// `http://` to a host that is not a loopback address or `localhost`.
pub fn check_credentials(
    endpoint: &str,
    tls: Option<&ClientTls>,
    sends_token: bool,
) -> Result<(), SourceError> {
    let refused = |message: &str| SourceError::Refused {
        endpoint: endpoint.to_owned(),
        message: message.to_owned(),
    };
    let uri: Uri = endpoint.parse().map_err(|_| refused("not a URL"))?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") => {
            if tls.is_some() {
                return Err(refused(
                    "TLS settings (--ca, --client-cert) with an http:// URL would connect in \
                     clear; use https://",
                ));
            }
            if sends_token && !is_local(uri.host().unwrap_or_default()) {
                return Err(refused(
                    "a bearer token to a non-loopback host over http:// would cross the network \
                     in clear; use https://",
                ));
            }
            Ok(())
        }
        _ => Err(refused("the URL must start with http:// or https://")),
    }
}

/// Whether `host` (as a URI writes it: IPv6 in brackets) is this machine.
fn is_local(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A connected channel to `endpoint` ([`check_credentials`] first), ready
/// within [`CONNECT_DEADLINE`] (TLS handshake included) or a connect error.
pub async fn connect_channel(
    endpoint: &str,
    tls: Option<&ClientTls>,
    sends_token: bool,
    idle: Duration,
) -> Result<Channel, SourceError> {
    check_credentials(endpoint, tls, sends_token)?;
    let channel = connect_endpoint(endpoint, tls, idle)?;
    match tokio::time::timeout(CONNECT_DEADLINE, channel.connect()).await {
        Ok(connected) => connected.map_err(|e| connect_error(endpoint, &e)),
        Err(_) => Err(SourceError::Connect {
            endpoint: endpoint.to_owned(),
            message: format!("no connection (TCP and TLS handshake) within {CONNECT_DEADLINE:?}"),
        }),
    }
}

/// Builds the channel of a gRPC client of the gateway: TLS for `https://`
/// endpoints (system roots unless `tls` gives a CA), connect timeout and
/// HTTP/2 keepalive of `idle`. Shared by the source and the CLI's clients;
/// [`connect_channel`] also checks the credentials and bounds the
/// handshake.
pub fn connect_endpoint(
    endpoint: &str,
    tls: Option<&ClientTls>,
    idle: Duration,
) -> Result<Endpoint, SourceError> {
    let refused = |message: String| SourceError::Connect {
        endpoint: endpoint.to_owned(),
        message,
    };
    let mut channel = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| refused(e.to_string()))?
        .connect_timeout(idle)
        .http2_keep_alive_interval(idle / 2)
        // A ping answered within `idle`: a silent connection is found
        // within 1.5 `idle`, always after an open that went unanswered for
        // `idle` was given up as such (the two would otherwise race).
        .keep_alive_timeout(idle)
        .keep_alive_while_idle(true);
    let https = endpoint.starts_with("https://");
    if https || tls.is_some() {
        let config = tls.map_or_else(
            || ClientTls::default().tonic_config(),
            ClientTls::tonic_config,
        );
        channel = channel
            .tls_config(config)
            .map_err(|e| refused(format!("TLS configuration: {e:#}")))?;
    }
    Ok(channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(endpoint: &str, tls: bool, token: bool) -> bool {
        let tls = tls.then(ClientTls::default);
        matches!(
            check_credentials(endpoint, tls.as_ref(), token),
            Err(SourceError::Refused { .. })
        )
    }

    #[test]
    fn no_credential_crosses_the_network_in_clear() {
        // TLS settings never go with http://, wherever it points.
        assert!(refused("http://127.0.0.1:50051", true, false));
        assert!(refused("http://gateway.example:50051", true, true));
        // A token over http:// only to this machine.
        for local in [
            "http://127.0.0.1:1",
            "http://localhost:1",
            "http://[::1]:1",
            "http://127.9.9.9",
        ] {
            assert!(!refused(local, false, true), "{local}");
        }
        for remote in [
            "http://10.0.0.5:50051",
            "http://gateway.example",
            "http://[2001:db8::1]:1",
        ] {
            assert!(refused(remote, false, true), "{remote}");
            assert!(!refused(remote, false, false), "no token: {remote}");
        }
        assert!(!refused("https://gateway.example", true, true));
        assert!(refused("ftp://gateway.example", false, false));
        assert!(refused("not a url at all", false, false));
    }
}
