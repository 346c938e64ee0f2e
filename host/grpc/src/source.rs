//! [`GrpcSource`]: the gateway's `InvalidationService.Subscribe` over tonic,
//! with its `Lookup` for durable waits (`lookup.rs`).
//!
//! Response messages are not decoded on the host: a raw codec hands each
//! message's bytes to the sink, length-prefixed, so the sandboxed guest is
//! the only protobuf parser of untrusted input. Messages that are ready
//! together are batched into one guest call.

use crate::lookup::GrpcLookup;
use crate::refusal::{connect_error, status_error};
use crate::tls::{ClientTls, connect_channel};
use crate::token::bearer;
use approval_host::sources::{
    Chunk, Chunks, EventSource, OpenRequest, SourceError, VerdictLookup, open_within,
};
use approval_proto::SubscribeRequest;
use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use std::sync::Arc;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::codegen::http::uri::PathAndQuery;

const SUBSCRIBE: &str = "/assembly.gateway.v1.InvalidationService/Subscribe";

/// Most messages batched into one guest call.
pub(crate) const BATCH_MESSAGES: usize = 512;

/// The default transport limit: messages up to this size are received whole
/// and, when over the sink's frame limit, skipped and counted, so the stream
/// goes on; a larger one fails the stream. Well above the sink's frame limit
/// (64 KiB by default), and never below it.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Subscribes to a gateway's invalidation stream, resuming after the sink's
/// `last_seq` on every (re)connect, so nothing is lost or applied twice.
pub struct GrpcSource {
    endpoint: String,
    agent_id: String,
    max_message_bytes: usize,
    tls: Option<ClientTls>,
    token: Option<String>,
}

impl GrpcSource {
    /// A source for the gateway at `endpoint` (e.g. `http://127.0.0.1:50051`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use approval_grpc::GrpcSource;
    /// use approval_host::ApprovalSink;
    /// use std::time::Duration;
    ///
    /// #[tokio::main]
    /// async fn main() {
    ///     let sink = ApprovalSink::new();
    ///     // Reconnects with backoff and resumes after the sink's last_seq.
    ///     let pump = sink.pump(GrpcSource::new("http://127.0.0.1:50051").agent_id("agent-7"));
    ///     let decision = sink.wait_for_approval("req-1", Duration::from_secs(60)).await;
    ///     println!("{decision:?} ({:?})", pump.stats());
    /// }
    /// ```
    ///
    /// `approval_gateway::Gateway::serve` has a runnable version with a
    /// gateway on loopback.
    pub fn new(endpoint: impl Into<String>) -> Self {
        GrpcSource {
            endpoint: endpoint.into(),
            agent_id: String::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            tls: None,
            token: None,
        }
    }

    /// TLS settings (a CA instead of the system roots, a client certificate
    /// for mTLS). An `https://` endpoint speaks TLS without this too, with
    /// the system roots.
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sends `authorization: Bearer <token>` on every call (the gateway's
    /// subscriber token).
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Only this agent's policy invalidations (verdicts always arrive);
    /// default: every agent's.
    pub fn agent_id(mut self, agent_id: impl Into<String>) -> Self {
        self.agent_id = agent_id.into();
        self
    }

    /// The largest gRPC message the transport accepts (raised to the sink's
    /// frame limit if below it). A message over the sink's frame limit but
    /// within this one is skipped and counted and the stream goes on; one
    /// over this limit ends the stream. Default
    /// [`DEFAULT_MAX_MESSAGE_BYTES`] (16 MiB).
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Opens the subscription, giving up after `idle_timeout`: a gateway
    /// that accepts TCP and never answers must not hold the pump for ever.
    async fn subscribe(&self, request: OpenRequest) -> Result<Chunks, SourceError> {
        open_within(
            request.idle_timeout,
            &self.endpoint,
            self.open_stream(request),
        )
        .await
    }

    async fn open_stream(&self, request: OpenRequest) -> Result<Chunks, SourceError> {
        let endpoint = self.endpoint.as_str();
        // HTTP/2 pings find a connection that went silent (a half-open
        // gateway, a dropped NAT entry) within about `idle_timeout`, even
        // while no event flows.
        let channel = connect_channel(
            endpoint,
            self.tls.as_ref(),
            self.token.is_some(),
            request.idle_timeout,
        )
        .await?;
        let max = request.max_frame_bytes as usize;
        let transport = self.max_message_bytes.max(max.saturating_add(1024));
        let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(transport);
        grpc.ready()
            .await
            .map_err(|e| connect_error(endpoint, &e))?;
        let mut subscribe = tonic::Request::new(SubscribeRequest {
            agent_id: self.agent_id.clone(),
            last_seq_seen: request.last_seq,
            log_id: request.log_id,
        });
        if let Some(token) = &self.token {
            subscribe
                .metadata_mut()
                .insert("authorization", bearer(token)?);
        }
        let response = grpc
            .server_streaming(subscribe, PathAndQuery::from_static(SUBSCRIBE), RawCodec)
            .await
            .map_err(|s| status_error(endpoint, &s))?;
        let endpoint = endpoint.to_owned();
        let chunks = response
            .into_inner()
            .ready_chunks(BATCH_MESSAGES)
            .map(move |messages| {
                let mut chunk = Chunk::default();
                for message in messages {
                    let message = message.map_err(|s| status_error(&endpoint, &s))?;
                    if message.len() > max {
                        chunk.oversized += 1;
                        tracing::warn!(
                            bytes = message.len(),
                            max,
                            "skipping a gateway message over the sink's frame limit"
                        );
                        continue;
                    }
                    prost::encoding::encode_varint(message.len() as u64, &mut chunk.frames);
                    chunk.frames.extend_from_slice(&message);
                }
                Ok(chunk)
            });
        Ok(chunks.boxed())
    }
}

impl EventSource for GrpcSource {
    fn open(&mut self, request: OpenRequest) -> BoxFuture<'_, Result<Chunks, SourceError>> {
        self.subscribe(request).boxed()
    }

    fn describe(&self) -> String {
        format!("gRPC {}", self.endpoint)
    }

    /// Durable waits: each new wait is also looked up with the gateway's
    /// `Lookup`, so a verdict its replay retention dropped still settles it.
    fn lookup(&self) -> Option<Arc<dyn VerdictLookup>> {
        Some(Arc::new(GrpcLookup::new(
            self.endpoint.clone(),
            self.tls.clone(),
            self.token.clone(),
            self.max_message_bytes,
        )))
    }
}

/// Encodes the request with prost; passes response messages through as raw
/// bytes.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = SubscribeRequest;
    type Decode = Bytes;
    type Encoder = tonic_prost::ProstEncoder<SubscribeRequest>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

/// Takes a whole response message as bytes.
struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}
