//! How the simulated reviewer's verdicts reach the sink: as frames into
//! its stream input, through a gRPC gateway (`--gateway`), or through NATS
//! JetStream with a stateless gateway over it (`--nats`).

use super::DemoArgs;
use crate::cli::client::read;
use crate::cli::nats::LocalNats;
use crate::cli::tokens::{REVIEW_TOKEN_FILE, SUBSCRIBE_TOKEN_FILE, fresh_token};
use anyhow::Context;
use approval_gateway::{Gateway, GatewayLog, LogLimits, Token};
use approval_grpc::{Bearer, GrpcSource};
use approval_host::sources::Pump;
use approval_host::{ApprovalSink, TrustedKey};
use approval_nats::{NatsConfig, NatsSource};
use approval_proto::grpc::review_service_client::ReviewServiceClient;
use approval_proto::{Event, InvalidationEvent};
use prost::Message;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A `ReviewService` client sending the review token.
type ReviewClient = ReviewServiceClient<InterceptedService<Channel, Bearer>>;

/// How the simulated reviewer's verdicts reach the sink.
#[derive(Clone)]
pub(super) enum Reviewer {
    /// Length-delimited frames straight into the sink's stream input.
    Frames(ApprovalSink),
    /// `ReviewService` of a gateway the sink is subscribed to.
    Gateway(ReviewClient),
}

/// The reviewer's way in, and what must live as long as the run.
pub(super) struct Transport {
    /// How verdicts are sent.
    pub(super) reviewer: Reviewer,
    /// The sink's source, if verdicts go through a gateway or the log.
    _pump: Option<Pump>,
    /// An in-process gateway, if one was started.
    _gateway: Option<tokio::task::JoinHandle<Result<(), approval_gateway::GatewayError>>>,
    /// A local `nats-server`, if one was started.
    _nats: Option<LocalNats>,
}

/// The two tokens of a gateway: fresh ones for a gateway of our own, or
/// those `approval-sink tokens` wrote into `--tokens DIR`.
struct Tokens {
    review: String,
    subscribe: String,
}

impl Tokens {
    fn fresh() -> anyhow::Result<Self> {
        Ok(Tokens {
            review: fresh_token()?,
            subscribe: fresh_token()?,
        })
    }

    fn read(dir: &std::path::Path) -> anyhow::Result<Self> {
        let read = |name: &str| -> anyhow::Result<String> {
            let path = dir.join(name);
            let token = read(&path)?.trim().to_owned();
            Token::new(&token).with_context(|| format!("token file {}", path.display()))?;
            Ok(token)
        };
        Ok(Tokens {
            review: read(REVIEW_TOKEN_FILE)?,
            subscribe: read(SUBSCRIBE_TOKEN_FILE)?,
        })
    }

    /// A gateway of our own, requiring these tokens and verifying
    /// signatures with `trusted` (so the attacker's forgeries never become
    /// the first verdict of a request).
    fn guard(&self, gateway: Gateway, trusted: &[TrustedKey]) -> anyhow::Result<Gateway> {
        Ok(gateway
            .review_token(Token::new(&self.review)?)
            .subscribe_token(Token::new(&self.subscribe)?)
            .trusted_keys(trusted)?)
    }

    /// A `ReviewService` client of `url` sending the review token.
    async fn client(&self, url: String) -> anyhow::Result<ReviewClient> {
        // The same rules as every client: the review token never goes to a
        // non-loopback host in clear.
        let channel =
            approval_grpc::connect_channel(&url, None, true, approval_grpc::CONNECT_DEADLINE)
                .await?;
        Ok(ReviewServiceClient::with_interceptor(
            channel,
            Bearer::new(Some(&self.review))?,
        ))
    }
}

/// Sets up the way `args` asks for; a gateway of our own verifies with
/// `trusted`.
pub(super) async fn connect(
    args: &DemoArgs,
    sink: &ApprovalSink,
    trusted: &[TrustedKey],
) -> anyhow::Result<Transport> {
    let mut nats_server = None;
    let (reviewer, pump, gateway) = match (args.gateway.as_deref(), args.nats.as_deref()) {
        (None, None) => (Reviewer::Frames(sink.clone()), None, None),
        (_, Some(nats)) => {
            let url = if nats == "local" {
                let server = LocalNats::start()?;
                let url = server.url();
                nats_server = Some(server);
                url
            } else {
                nats.to_owned()
            };
            let config = NatsConfig::new(&url);
            let log = crate::cli::nats::open(config.clone()).await?;
            let tokens = Tokens::fresh()?;
            let gateway = tokens.guard(Gateway::nats(log), trusted)?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let gateway_url = format!("http://{}", listener.local_addr()?);
            let serve = tokio::spawn(gateway.serve(listener, std::future::pending()));
            let pump = sink.pump(NatsSource::new(config));
            let client = tokens.client(gateway_url).await?;
            println!("reviewing through NATS JetStream at {url} (stream APPROVALS)");
            (Reviewer::Gateway(client), Some(pump), Some(serve))
        }
        (Some(url), None) => {
            let (url, tokens, gateway) = match url {
                "local" => {
                    let tokens = Tokens::fresh()?;
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                    let url = format!("http://{}", listener.local_addr()?);
                    let log = GatewayLog::in_memory(LogLimits::retaining(1 << 20))?;
                    let serve = tokens
                        .guard(Gateway::new(log), trusted)?
                        .serve(listener, std::future::pending());
                    (url, tokens, Some(tokio::spawn(serve)))
                }
                url => {
                    let dir = args
                        .tokens
                        .as_deref()
                        .context("--gateway URL needs --tokens DIR (see `approval-sink tokens`)")?;
                    (url.to_string(), Tokens::read(dir)?, None)
                }
            };
            let source = GrpcSource::new(url.clone()).bearer_token(tokens.subscribe.clone());
            let pump = sink.pump(source);
            let client = tokens.client(url.clone()).await?;
            println!("reviewing through the gRPC gateway at {url}");
            (Reviewer::Gateway(client), Some(pump), gateway)
        }
    };
    Ok(Transport {
        reviewer,
        _pump: pump,
        _gateway: gateway,
        _nats: nats_server,
    })
}

impl Reviewer {
    /// Publishes events; `last_seq` is the sequence number of the last one.
    /// Returns how many a verifying gateway refused (the forgeries).
    pub(super) async fn publish(&self, events: Vec<Event>, last_seq: u64) -> anyhow::Result<u64> {
        let mut refused = 0;
        match self {
            Reviewer::Frames(sink) => {
                let first = last_seq + 1 - events.len() as u64;
                let bytes: Vec<u8> = events
                    .into_iter()
                    .zip(first..)
                    .flat_map(|(event, seq)| {
                        InvalidationEvent {
                            seq,
                            event: Some(event),
                            log_id: 0,
                        }
                        .encode_length_delimited_to_vec()
                    })
                    .collect();
                if !bytes.is_empty() {
                    sink.ingest_bytes(&bytes)?;
                }
            }
            Reviewer::Gateway(client) => {
                let calls = events.into_iter().map(|event| {
                    let mut client = client.clone();
                    async move {
                        match event {
                            Event::ApprovalResolved(r) => client.resolve(r).await.map(drop),
                            Event::PolicyInvalidated(p) => client.invalidate(p).await.map(drop),
                        }
                    }
                });
                for result in futures::future::join_all(calls).await {
                    match result {
                        // A gateway that verifies signatures (the NATS
                        // demo's) refuses the forgeries itself.
                        Err(status) if status.code() == tonic::Code::PermissionDenied => {
                            refused += 1;
                        }
                        other => other?,
                    }
                }
            }
        }
        Ok(refused)
    }
}
