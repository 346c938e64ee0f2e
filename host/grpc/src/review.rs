//! [`ReviewClient`]: a reviewer's client of `ReviewService` (the CLI's
//! `resolve` and `invalidate`), with TLS and the review token on every call.

use crate::refusal::status_error;
use crate::tls::{ClientTls, connect_channel};
use crate::token::Bearer;
use approval_host::sources::SourceError;
use approval_proto::grpc::review_service_client::ReviewServiceClient;
use approval_proto::{ApprovalResolved, PolicyInvalidated};
use std::time::Duration;
use tonic::Code;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

/// How long connecting to the gateway may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a review call did not publish.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Another verdict already stands for the request id (first wins); the
    /// gateway's message names it.
    #[error("{0}")]
    AlreadyDecided(String),
    /// The verdict stored for the request id does not verify with the
    /// gateway's trusted keys: a forgery put into the log bypassing the
    /// gateways (`FAILED_PRECONDITION`); nothing was published.
    #[error("{0}")]
    Forged(String),
    /// The gateway could not be reached, refused this client, or answered
    /// with another error.
    #[error(transparent)]
    Gateway(#[from] SourceError),
}

/// A connected `ReviewService` client.
pub struct ReviewClient {
    endpoint: String,
    client: ReviewServiceClient<InterceptedService<Channel, Bearer>>,
}

impl ReviewClient {
    /// Connects to the gateway at `endpoint` (TLS for `https://` or when
    /// `tls` is given), sending `token` as a bearer token on every call.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use approval_grpc::{ClientTls, ReviewClient};
    /// use approval_proto::{ApprovalResolved, Decision};
    ///
    /// # async fn review() -> Result<(), Box<dyn std::error::Error>> {
    /// let tls = ClientTls { ca_pem: Some(std::fs::read_to_string("ca.pem")?), ..Default::default() };
    /// let token = std::fs::read_to_string("review.token")?;
    /// let mut client = ReviewClient::connect("https://gateway:50443", Some(&tls), Some(token.trim())).await?;
    /// let seq = client
    ///     .resolve(ApprovalResolved {
    ///         request_id: "req-7".into(),
    ///         decision: Decision::Denied as i32,
    ///         reviewer: "alice".into(),
    ///         ..ApprovalResolved::default()
    ///     })
    ///     .await?;
    /// println!("published as seq {seq}");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(
        endpoint: &str,
        tls: Option<&ClientTls>,
        token: Option<&str>,
    ) -> Result<Self, SourceError> {
        let interceptor = Bearer::new(token)?;
        let channel = connect_channel(endpoint, tls, token.is_some(), CONNECT_TIMEOUT).await?;
        Ok(ReviewClient {
            endpoint: endpoint.to_owned(),
            client: ReviewServiceClient::with_interceptor(channel, interceptor),
        })
    }

    /// Publishes `verdict`; returns its sequence number (the standing one's
    /// when the same verdict stood already).
    pub async fn resolve(&mut self, verdict: ApprovalResolved) -> Result<u64, ReviewError> {
        match self.client.resolve(verdict).await {
            Ok(reply) => Ok(reply.into_inner().seq),
            Err(status) if status.code() == Code::AlreadyExists => {
                Err(ReviewError::AlreadyDecided(status.message().to_owned()))
            }
            Err(status) if status.code() == Code::FailedPrecondition => {
                Err(ReviewError::Forged(status.message().to_owned()))
            }
            Err(status) => Err(status_error(&self.endpoint, &status).into()),
        }
    }

    /// Publishes a policy invalidation for `agent_id` (empty: every agent);
    /// returns its sequence number.
    pub async fn invalidate(&mut self, agent_id: &str) -> Result<u64, ReviewError> {
        let request = PolicyInvalidated {
            agent_id: agent_id.to_owned(),
        };
        self.client
            .invalidate(request)
            .await
            .map(|reply| reply.into_inner().seq)
            .map_err(|status| status_error(&self.endpoint, &status).into())
    }
}
