//! [`GrpcLookup`]: durable waits over gRPC: the pump looks each new wait up
//! with the gateway's `InvalidationService.Lookup`, so a wait that starts
//! after the gateway's replay retention dropped its verdict still sees it.
//!
//! As with the stream, the reply's events are not decoded on the host: a
//! prost message with the events as opaque bytes splits the reply, and each
//! event goes to the guest, made unsequenced, as a frame body.

use crate::refusal::{connect_error, status_error};
use crate::tls::{ClientTls, connect_channel};
use crate::token::bearer;
use approval_host::sources::{SourceError, VerdictLookup, unsequenced_frame};
use approval_proto::LookupRequest;
use futures::FutureExt;
use futures::future::BoxFuture;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

const LOOKUP: &str = "/assembly.gateway.v1.InvalidationService/Lookup";

/// How long connecting for a lookup may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `LookupReply` with its events left as bytes (field 1, repeated).
#[derive(Clone, PartialEq, prost::Message)]
struct RawLookupReply {
    #[prost(bytes = "vec", repeated, tag = "1")]
    events: Vec<Vec<u8>>,
}

/// Looks verdicts up at one gateway, over one lazily opened channel.
pub(crate) struct GrpcLookup {
    endpoint: String,
    tls: Option<ClientTls>,
    token: Option<String>,
    max_message_bytes: usize,
    channel: tokio::sync::OnceCell<Channel>,
}

impl GrpcLookup {
    pub(crate) fn new(
        endpoint: String,
        tls: Option<ClientTls>,
        token: Option<String>,
        max_message_bytes: usize,
    ) -> Self {
        GrpcLookup {
            endpoint,
            tls,
            token,
            max_message_bytes,
            channel: tokio::sync::OnceCell::new(),
        }
    }

    /// The channel, connected on first use (tonic reconnects it after).
    async fn channel(&self) -> Result<Channel, SourceError> {
        let endpoint = self.endpoint.as_str();
        self.channel
            .get_or_try_init(|| async {
                connect_channel(
                    endpoint,
                    self.tls.as_ref(),
                    self.token.is_some(),
                    CONNECT_TIMEOUT,
                )
                .await
            })
            .await
            .cloned()
    }

    async fn lookup(&self, request_id: String) -> Result<Option<Vec<u8>>, SourceError> {
        let endpoint = self.endpoint.as_str();
        let mut grpc = tonic::client::Grpc::new(self.channel().await?)
            .max_decoding_message_size(self.max_message_bytes);
        grpc.ready()
            .await
            .map_err(|e| connect_error(endpoint, &e))?;
        let mut request = tonic::Request::new(LookupRequest {
            request_id: vec![request_id],
        });
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", bearer(token)?);
        }
        let codec = tonic_prost::ProstCodec::<LookupRequest, RawLookupReply>::default();
        let reply = grpc
            .unary(request, PathAndQuery::from_static(LOOKUP), codec)
            .await
            .map_err(|s| status_error(endpoint, &s))?;
        // One id asked, so at most one event; the guest checks it like any
        // other (signature, finality) and it never moves the resume point.
        Ok(reply
            .into_inner()
            .events
            .into_iter()
            .next()
            .map(|event| unsequenced_frame(&event)))
    }
}

impl VerdictLookup for GrpcLookup {
    fn lookup(&self, request_id: String) -> BoxFuture<'_, Result<Option<Vec<u8>>, SourceError>> {
        GrpcLookup::lookup(self, request_id).boxed()
    }
}
