//! What every client command shares: how it reaches a gateway (URL, TLS,
//! token) or the NATS log, the files it reads, and its runtime.

use super::nats::NatsArgs;
use anyhow::Context;
use approval_gateway::Token;
use approval_grpc::{ClientTls, ReviewClient};
use approval_host::TrustedKey;
use clap::Args;
use std::path::{Path, PathBuf};

/// How a client reaches a gateway: URL, TLS and token.
#[derive(Args)]
pub struct ClientArgs {
    /// The gateway's URL (https:// for TLS).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub gateway: String,
    /// Send this bearer token (file, whitespace trimmed).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Trust this CA (PEM) instead of the system roots; implies TLS.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Present this client certificate (PEM; mTLS); needs --client-key.
    #[arg(long, requires = "client_key", value_name = "PEM")]
    client_cert: Option<PathBuf>,
    /// The private key of --client-cert (PEM).
    #[arg(long, requires = "client_cert", value_name = "PEM")]
    client_key: Option<PathBuf>,
    /// Use the JetStream log directly (--nats URL) instead of --gateway.
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// A file's text, or an error naming it.
pub fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A token file's token (at least 16 bytes of visible ASCII).
pub fn read_token(path: &Path) -> anyhow::Result<Token> {
    Token::new(&read(path)?).with_context(|| format!("token file {}", path.display()))
}

/// The `.pub` files' keys.
pub fn trusted_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<TrustedKey>> {
    paths
        .iter()
        .map(|p| TrustedKey::read(p).with_context(|| format!("trusted key {}", p.display())))
        .collect()
}

impl ClientArgs {
    /// The TLS settings the flags give, if any.
    pub fn tls(&self) -> anyhow::Result<Option<ClientTls>> {
        let identity = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            _ => None,
        };
        if self.ca.is_none() && identity.is_none() {
            return Ok(None);
        }
        Ok(Some(ClientTls {
            ca_pem: self.ca.as_deref().map(read).transpose()?,
            identity_pem: identity,
            domain: None,
        }))
    }

    /// The bearer token of `--token-file`, if given.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        self.token_file
            .as_deref()
            .map(|p| {
                let token = read(p)?.trim().to_owned();
                anyhow::ensure!(!token.is_empty(), "{} holds no token", p.display());
                Ok(token)
            })
            .transpose()
    }

    /// A `ReviewService` client with TLS and the token on every call.
    pub async fn review_client(&self) -> anyhow::Result<ReviewClient> {
        let tls = self.tls()?;
        let token = self.token()?;
        Ok(ReviewClient::connect(&self.gateway, tls.as_ref(), token.as_deref()).await?)
    }
}

/// A multi-threaded runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
