//! [`GrpcSource`]: the gateway's `InvalidationService.Subscribe` over tonic.
//!
//! Response messages are not decoded on the host: a raw codec hands each
//! message's bytes to the sink, length-prefixed, so the sandboxed guest is
//! the only protobuf parser of untrusted input. Messages that are ready
//! together are batched into one guest call.

use super::{Chunks, EventSource, SourceError};
use approval_proto::SubscribeRequest;
use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Endpoint;

const SUBSCRIBE: &str = "/assembly.gateway.v1.InvalidationService/Subscribe";

/// Most messages batched into one guest call.
const BATCH_MESSAGES: usize = 512;

/// The largest message the transport accepts; the sink's own frame limit
/// (smaller) then decides. Larger messages fail the stream.
const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// Subscribes to a gateway's invalidation stream, resuming after the sink's
/// `last_seq` on every (re)connect, so nothing is lost or applied twice.
pub struct GrpcSource {
    endpoint: String,
    agent_id: String,
    max_frame_bytes: usize,
    oversized: Arc<AtomicU64>,
}

impl GrpcSource {
    /// A source for the gateway at `endpoint` (e.g. `http://127.0.0.1:50051`).
    pub fn new(endpoint: impl Into<String>) -> Self {
        GrpcSource {
            endpoint: endpoint.into(),
            agent_id: String::new(),
            max_frame_bytes: 64 * 1024,
            oversized: Arc::default(),
        }
    }

    /// Only this agent's policy invalidations (verdicts always arrive);
    /// default: every agent's.
    pub fn agent_id(mut self, agent_id: impl Into<String>) -> Self {
        self.agent_id = agent_id.into();
        self
    }

    /// Messages above this size are skipped (and counted) instead of sent to
    /// the guest, which would reject them anyway; match the sink's
    /// `max_frame_bytes`. Default 64 KiB.
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.max_frame_bytes = bytes;
        self
    }

    /// Messages skipped as over `max_frame_bytes`.
    pub fn oversized(&self) -> u64 {
        self.oversized.load(Ordering::Relaxed)
    }

    async fn subscribe(&self, last_seq: u64) -> Result<Chunks, SourceError> {
        let connect_err = |message: String| SourceError::Connect {
            endpoint: self.endpoint.clone(),
            message,
        };
        let channel = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|e| connect_err(e.to_string()))?
            .connect()
            .await
            .map_err(|e| connect_err(format!("{e:#}")))?;
        let mut grpc =
            tonic::client::Grpc::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
        grpc.ready().await.map_err(|e| connect_err(e.to_string()))?;
        let request = SubscribeRequest {
            agent_id: self.agent_id.clone(),
            last_seq_seen: last_seq,
        };
        let response = grpc
            .server_streaming(
                tonic::Request::new(request),
                PathAndQuery::from_static(SUBSCRIBE),
                RawCodec,
            )
            .await
            .map_err(|s| SourceError::Status(s.to_string()))?;
        let max = self.max_frame_bytes;
        let oversized = Arc::clone(&self.oversized);
        let chunks = response
            .into_inner()
            .ready_chunks(BATCH_MESSAGES)
            .map(move |messages| {
                let mut batch = Vec::new();
                for message in messages {
                    let message = message.map_err(|s| SourceError::Status(s.to_string()))?;
                    if message.len() > max {
                        oversized.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            bytes = message.len(),
                            "skipping an oversized gateway message"
                        );
                        continue;
                    }
                    prost::encoding::encode_varint(message.len() as u64, &mut batch);
                    batch.extend_from_slice(&message);
                }
                Ok(batch)
            });
        Ok(chunks.boxed())
    }
}

impl EventSource for GrpcSource {
    fn open(&mut self, last_seq: u64) -> BoxFuture<'_, Result<Chunks, SourceError>> {
        self.subscribe(last_seq).boxed()
    }

    fn reopens(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("gRPC {}", self.endpoint)
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
