//! [`NatsSource`]: the JetStream log (SPEC.md §5.4) as an event source of
//! `approval_host`, with durable waits.
//!
//! # Invariants
//!
//! * Each open binds the stream afresh and reads its log id (S16), then
//!   follows it ([`follow`](crate::follow()), which also ends the
//!   subscription when the stream is replaced): from `last_seq + 1` when the
//!   sink's resume point is of this log (also with `last_seq` 0: a sink
//!   told the log's id reads it from the start), else from
//!   `verdict_cache_ttl` ago (older verdicts reach new waits through
//!   lookups).
//! * Stored messages reach the guest untouched but for `seq` and `log_id`
//!   appended after them ([`append_frame`](crate::append_frame)); the host
//!   never decodes them.
//!   A message over the sink's frame limit is skipped and counted.
//! * A lookup hands the guest the first message on the id's subject with
//!   `seq = 0` appended, so it is applied unsequenced and never moves
//!   `last_seq` (events not yet consumed would otherwise be skipped).
//! * The client reconnects on its own; a consumer that fails ends the
//!   chunk stream and the pump reopens it at its backoff.

use crate::config::NatsConfig;
use crate::error::NatsError;
use crate::follow::follow;
use crate::publish::first_message;
use crate::subjects::{APPENDED_MAX, append_frame, log_id, resolved_subject, unsequenced_frame};
use approval_host::sources::{
    Chunk, Chunks, EventSource, OpenRequest, SourceError, VerdictLookup, open_within,
};
use async_nats::jetstream;
use async_nats::jetstream::consumer::DeliverPolicy;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Most messages batched into one guest call.
pub(crate) const BATCH_MESSAGES: usize = 512;

/// How long a lookup may take to connect when the source has no
/// connection yet.
pub(crate) const LOOKUP_CONNECT: Duration = Duration::from_secs(10);

/// Subscribes to the JetStream log of [`NatsConfig`]; resumes from the
/// sink's `(log_id, last_seq)`; looks up the stored verdict of each new
/// wait (durable waits).
pub struct NatsSource {
    shared: Arc<Connection>,
    agent_id: String,
}

/// The connection and stream, shared by the source and its lookups.
struct Connection {
    config: NatsConfig,
    js: tokio::sync::OnceCell<jetstream::Context>,
    stream: Mutex<Option<jetstream::stream::Stream>>,
}

impl NatsSource {
    /// A source over the log `config` names (its stream is created when
    /// missing, with `config.replicas`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use approval_host::ApprovalSink;
    /// use approval_nats::{NatsConfig, NatsSource};
    /// use std::time::Duration;
    ///
    /// #[tokio::main]
    /// async fn main() {
    ///     let sink = ApprovalSink::new();
    ///     let config = NatsConfig::new("nats://n1:4222,nats://n2:4222,nats://n3:4222");
    ///     // The stream, plus a lookup per new wait of a verdict stored before it.
    ///     let _pump = sink.pump(NatsSource::new(config));
    ///     let decision = sink.wait_for_approval("req-7", Duration::from_secs(60)).await;
    ///     println!("{decision:?}");
    /// }
    /// ```
    pub fn new(config: NatsConfig) -> Self {
        NatsSource {
            shared: Arc::new(Connection {
                config,
                js: tokio::sync::OnceCell::new(),
                stream: Mutex::new(None),
            }),
            agent_id: String::new(),
        }
    }

    /// Only this agent's policy invalidations (and every agent's); verdicts
    /// always arrive. Default: every agent's.
    pub fn agent_id(mut self, agent_id: impl Into<String>) -> Self {
        self.agent_id = agent_id.into();
        self
    }

    async fn subscribe(&self, request: OpenRequest) -> Result<Chunks, SourceError> {
        let servers = self.shared.config.servers.join(",");
        open_within(request.idle_timeout, &servers, self.open_consumer(request)).await
    }

    async fn open_consumer(&self, request: OpenRequest) -> Result<Chunks, SourceError> {
        let conn = &self.shared;
        let js = conn.context(request.idle_timeout).await?;
        let mut stream = conn.config.ensure_stream(js).await?;
        let info = stream.info().await.map_err(|e| conn.config.error(e))?;
        let log_id = log_id(info);
        *conn.stream.lock().unwrap_or_else(PoisonError::into_inner) = Some(stream.clone());
        let deliver_policy = if request.log_id == log_id {
            DeliverPolicy::ByStartSequence {
                start_sequence: request.last_seq.saturating_add(1),
            }
        } else {
            // Any TTL a config holds, however large, is a start time (S19:
            // no value panics): past the calendar's start means "all".
            let now = time::OffsetDateTime::now_utc();
            let since = time::Duration::try_from(request.verdict_ttl)
                .ok()
                .and_then(|ttl| now.checked_sub(ttl))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            DeliverPolicy::ByStartTime { start_time: since }
        };
        let stored = follow(
            js,
            &stream,
            &conn.config,
            &self.agent_id,
            deliver_policy,
            log_id,
        )
        .await?;
        let max = request.max_frame_bytes as usize;
        let chunks = stored.ready_chunks(BATCH_MESSAGES).map(move |batch| {
            let mut chunk = Chunk::default();
            for stored in batch {
                let (seq, payload) = stored?;
                // The frame is the payload plus what `append_frame` adds: a
                // frame over the guest's limit would be fatal to the stream
                // and come back on every reopen, so it is skipped here.
                if payload.len().saturating_add(APPENDED_MAX) > max {
                    chunk.oversized += 1;
                    tracing::warn!(
                        seq,
                        bytes = payload.len(),
                        max,
                        "skipping a NATS message over the sink's frame limit"
                    );
                    continue;
                }
                append_frame(&mut chunk.frames, &payload, seq, log_id);
            }
            Ok(chunk)
        });
        Ok(chunks.boxed())
    }
}

impl Connection {
    /// The JetStream context, connecting on first use.
    async fn context(&self, timeout: Duration) -> Result<&jetstream::Context, NatsError> {
        self.js
            .get_or_try_init(|| async {
                let client = self.config.connect(timeout).await?;
                let mut js = jetstream::new(client);
                js.set_timeout(timeout);
                Ok(js)
            })
            .await
    }

    /// The stored verdict of `request_id` as an unsequenced frame.
    async fn lookup(&self, request_id: &str) -> Result<Option<Vec<u8>>, NatsError> {
        let cached = self
            .stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let stream = match cached {
            Some(stream) => stream,
            None => {
                let js = self.context(LOOKUP_CONNECT).await?;
                self.config.ensure_stream(js).await?
            }
        };
        let subject = resolved_subject(request_id);
        let message = first_message(&stream, &subject)
            .await
            .map_err(|e| self.config.error(e))?;
        Ok(message.map(|m| unsequenced_frame(&m.payload)))
    }
}

impl VerdictLookup for Connection {
    fn lookup(&self, request_id: String) -> BoxFuture<'_, Result<Option<Vec<u8>>, SourceError>> {
        async move { Ok(Connection::lookup(self, &request_id).await?) }.boxed()
    }
}

impl EventSource for NatsSource {
    fn open(&mut self, request: OpenRequest) -> BoxFuture<'_, Result<Chunks, SourceError>> {
        self.subscribe(request).boxed()
    }

    fn describe(&self) -> String {
        self.shared.config.describe()
    }

    fn lookup(&self) -> Option<Arc<dyn VerdictLookup>> {
        Some(Arc::clone(&self.shared) as Arc<dyn VerdictLookup>)
    }
}
