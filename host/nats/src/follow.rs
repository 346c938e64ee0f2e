//! Following the log, for every reader of it (the sink's `NatsSource` and
//! the gateway's `Subscribe`): an ordered push consumer over an agent's
//! subjects, yielding each stored message with its stream sequence, that
//! ends with an error once the stream is gone or has become another log.
//!
//! # Invariants
//!
//! * A push consumer: the server streams at its own pace (with flow
//!   control), where async-nats' ordered pull consumer asks for a fixed 500
//!   messages at a time and caps a reader's intake.
//! * The ordered consumer recreates itself after a reconnect, from the last
//!   sequence it delivered. After the stream is deleted and created again
//!   it would do the same in the new stream and skip its first events, so
//!   the stream's identity is checked every [`LOG_CHECK`], and a changed or
//!   missing stream ends the subscription (S16): the reader reopens in the
//!   new log. A check that cannot reach the server proves nothing and is
//!   ignored (the client reconnects on its own).

use crate::config::NatsConfig;
use crate::error::NatsError;
use crate::subjects::{filter_subjects, log_id as log_id_of};
use async_nats::jetstream;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::{DeliverPolicy, push::OrderedConfig};
use async_nats::jetstream::context::GetStreamErrorKind;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::time::Duration;

/// How often a subscription checks that its stream is still the same log.
pub const LOG_CHECK: Duration = Duration::from_secs(2);

/// Stored messages as `(stream sequence, bytes)`.
pub type StoredMessages = BoxStream<'static, Result<(u64, Bytes), NatsError>>;

/// Follows `stream` (the log `log_id`) from `deliver_policy`, over what a
/// subscriber for `agent_id` reads ([`filter_subjects`]).
pub async fn follow(
    js: &jetstream::Context,
    stream: &jetstream::stream::Stream,
    config: &NatsConfig,
    agent_id: &str,
    deliver_policy: DeliverPolicy,
    log_id: u64,
) -> Result<StoredMessages, NatsError> {
    let messages = stream
        .create_consumer(OrderedConfig {
            deliver_subject: js.client().new_inbox(),
            filter_subjects: filter_subjects(agent_id),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| config.error(format_args!("consumer: {e}")))?
        .messages()
        .await
        .map_err(|e| config.error(format_args!("consumer: {e}")))?;
    let status = config.clone();
    let stored = messages.map(move |message| {
        let message = message.map_err(|e| status.error(e))?;
        let seq = message
            .info()
            .map_err(|e| status.error(format_args!("message metadata: {e}")))?
            .stream_sequence;
        Ok((seq, message.message.payload))
    });
    let replaced = replaced(js.clone(), config.clone(), log_id);
    Ok(futures::stream::select(stored, replaced).boxed())
}

/// Yields one error once the stream is gone or is no longer `log_id`.
fn replaced(
    js: jetstream::Context,
    config: NatsConfig,
    log_id: u64,
) -> impl futures::Stream<Item = Result<(u64, Bytes), NatsError>> + Send {
    futures::stream::unfold(Some((js, config)), move |state| async move {
        let (js, config) = state?;
        loop {
            tokio::time::sleep(LOG_CHECK).await;
            let why = match js.get_stream(&config.stream).await {
                Ok(stream) => match stream.get_info().await {
                    Ok(info) if log_id_of(&info) != log_id => {
                        "the stream was created again: a new log"
                    }
                    _ => continue,
                },
                Err(e)
                    if matches!(e.kind(), GetStreamErrorKind::JetStream(js)
                    if js.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
                {
                    "the stream was deleted"
                }
                Err(_) => continue,
            };
            return Some((Err(config.error(why)), None));
        }
    })
}
