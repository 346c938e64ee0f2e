//! [`GrpcSource`]: the gateway's `InvalidationService.Subscribe` over tonic.
//!
//! Response messages are not decoded on the host: a raw codec hands each
//! message's bytes to the sink, length-prefixed, so the sandboxed guest is
//! the only protobuf parser of untrusted input. Messages that are ready
//! together are batched into one guest call.

use super::{Chunk, Chunks, EventSource, OpenRequest, SourceError};
use approval_proto::SubscribeRequest;
use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

const SUBSCRIBE: &str = "/assembly.gateway.v1.InvalidationService/Subscribe";

/// Most messages batched into one guest call.
const BATCH_MESSAGES: usize = 512;

/// The default transport limit: messages up to this size are received whole
/// and, when over the sink's frame limit, skipped and counted, so the stream
/// goes on; a larger one fails the stream. Well above the sink's frame limit
/// (64 KiB by default), and never below it.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 << 20;

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
        .keep_alive_timeout(idle / 2)
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

/// Classifies a failed connect: a TLS handshake failure is a refusal
/// (retrying cannot help), anything else a connect error.
pub fn connect_error(endpoint: &str, error: &(dyn std::error::Error + 'static)) -> SourceError {
    let message = error_chain(error);
    if is_tls_failure(error) {
        SourceError::Refused {
            endpoint: endpoint.to_owned(),
            message,
        }
    } else {
        SourceError::Connect {
            endpoint: endpoint.to_owned(),
            message,
        }
    }
}

/// Classifies a gRPC status: credentials refused, or another gateway error.
pub fn status_error(endpoint: &str, status: &Status) -> SourceError {
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => SourceError::Refused {
            endpoint: endpoint.to_owned(),
            message: status.to_string(),
        },
        // A TLS failure on an already lazily connected channel surfaces as
        // an `UNAVAILABLE` status whose source is the handshake error.
        _ if std::error::Error::source(status).is_some_and(is_tls_failure) => {
            SourceError::Refused {
                endpoint: endpoint.to_owned(),
                message: status.to_string(),
            }
        }
        _ => SourceError::Status(status.to_string()),
    }
}

/// Whether `rustls` failed somewhere in `error`'s source chain (also inside
/// an `io::Error`, where tokio-rustls puts it), or the peer ended the
/// connection with a fatal TLS alert. The alert is how a server refuses a
/// client that sent no certificate under TLS 1.3: the client's handshake has
/// already finished, and by the time the alert surfaces it has been turned
/// into text, so its text is what is left to recognise (rustls words it
/// "received fatal alert: ..."). When the server just closes the connection
/// instead, the attempt reads as a network fault; a later attempt usually
/// carries the alert.
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<rustls::Error>() || e.to_string().contains("received fatal alert") {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// `error` and its sources, joined, for a log line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

/// `authorization: Bearer <token>` metadata, checked once so a token with
/// bytes HTTP forbids is a typed error, not a panic.
pub fn bearer(token: &str) -> Result<MetadataValue<Ascii>, SourceError> {
    format!("Bearer {token}")
        .parse()
        .map_err(|_| SourceError::Refused {
            endpoint: String::new(),
            message: "the token is not valid HTTP header text".into(),
        })
}

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
        let idle = request.idle_timeout;
        tokio::time::timeout(idle, self.open_stream(request))
            .await
            .unwrap_or_else(|_| {
                Err(SourceError::Connect {
                    endpoint: self.endpoint.clone(),
                    message: format!("no answer within {idle:?}"),
                })
            })
    }

    async fn open_stream(&self, request: OpenRequest) -> Result<Chunks, SourceError> {
        let endpoint = self.endpoint.as_str();
        // HTTP/2 pings find a connection that went silent (a half-open
        // gateway, a dropped NAT entry) within about `idle_timeout`, even
        // while no event flows.
        let channel = connect_endpoint(endpoint, self.tls.as_ref(), request.idle_timeout)?
            .connect()
            .await
            .map_err(|e| connect_error(endpoint, &e))?;
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
