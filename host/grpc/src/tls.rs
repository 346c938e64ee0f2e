//! [`ClientTls`] and the channel every client of the gateway builds
//! ([`connect_endpoint`]): TLS through rustls with `ring`, the system's
//! roots unless a CA is given, keepalive and a connect timeout.

use approval_host::sources::SourceError;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

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

/// Builds the channel of a gRPC client of the gateway: TLS for `https://`
/// endpoints (system roots unless `tls` gives a CA), connect timeout and
/// HTTP/2 keepalive of `idle`. Shared by the source and the CLI's clients.
pub fn connect_endpoint(
    endpoint: &str,
    tls: Option<&ClientTls>,
    idle: std::time::Duration,
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
