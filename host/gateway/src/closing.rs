//! Ending subscriptions when a server instance shuts down: a subscription
//! never ends on its own, so without this a graceful shutdown would wait
//! for every subscriber for ever.

use crate::EventStream;
use approval_proto::InvalidationEvent;
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tonic::Status;

/// `events` until `closing` turns true, then one `UNAVAILABLE` (the
/// subscriber resumes from its `last_seq` elsewhere or later) and the end.
pub(crate) fn until_closing(
    events: impl Stream<Item = Result<InvalidationEvent, Status>> + Send + 'static,
    mut closing: watch::Receiver<bool>,
) -> EventStream {
    Box::pin(async_stream::stream! {
        let mut events = std::pin::pin!(events);
        loop {
            tokio::select! {
                next = events.next() => match next {
                    Some(item) => yield item,
                    None => break,
                },
                () = async { let _ = closing.wait_for(|closed| *closed).await; } => {
                    yield Err(Status::unavailable("gateway shutting down; resubscribe from last_seq"));
                    break;
                }
            }
        }
    })
}
