//! `ReviewService`: `Resolve` publishes a validated (and, with trusted
//! keys, verified) verdict, first wins with or without keys; `Invalidate`
//! publishes a policy invalidation (SPEC.md §9).

// Without `nats` the backend has one variant; the matches stay, so the
// code reads the same with and without it.
#![cfg_attr(not(feature = "nats"), allow(clippy::infallible_destructuring_match))]

use crate::auth::authorized;
use crate::limits::{PublishError, decision_name, signer};
use crate::validate::{MAX_ID_BYTES, check_len, check_resolve};
use crate::{Backend, Gateway};
use approval_proto::grpc::review_service_server::ReviewService;
use approval_proto::{ApprovalResolved, Event, PolicyInvalidated, PublishReply};
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl ReviewService for Gateway {
    async fn resolve(
        &self,
        request: Request<ApprovalResolved>,
    ) -> Result<Response<PublishReply>, Status> {
        let resolved = authorized(self.review_token.as_ref(), request)?;
        check_resolve(&resolved)?;
        if let Some(reviewers) = &self.reviewers {
            reviewers.verify(&resolved)?;
        }
        let seq = match &self.log {
            Backend::Memory(log) => {
                let id = resolved.request_id.clone();
                log.publish(Event::ApprovalResolved(resolved))
                    .await
                    .map_err(|e| publish_error(&id, e))?
            }
            // The JetStream log enforces first-wins itself.
            #[cfg(feature = "nats")]
            Backend::Nats(log) => {
                crate::nats::resolve(log, &resolved, self.reviewers.as_deref()).await?
            }
        };
        Ok(Response::new(PublishReply { seq }))
    }

    async fn invalidate(
        &self,
        request: Request<PolicyInvalidated>,
    ) -> Result<Response<PublishReply>, Status> {
        let invalidated = authorized(self.review_token.as_ref(), request)?;
        check_len("agent_id", &invalidated.agent_id, 0, MAX_ID_BYTES)?;
        let seq = match &self.log {
            Backend::Memory(log) => log
                .publish(Event::PolicyInvalidated(invalidated))
                .await
                .map_err(|e| publish_error("", e))?,
            #[cfg(feature = "nats")]
            Backend::Nats(log) => crate::nats::invalidate(log, &invalidated).await?,
        };
        Ok(Response::new(PublishReply { seq }))
    }
}

/// The status of a publication the log refused, for request `id`.
fn publish_error(id: &str, e: PublishError) -> Status {
    match e {
        PublishError::AlreadyDecided {
            decision,
            key_id,
            seq,
        } => Status::already_exists(format!(
            "{} already stands for {id} (seq {seq}, {})",
            decision_name(decision),
            signer(&key_id)
        )),
        e @ PublishError::Full { .. } => Status::resource_exhausted(e.to_string()),
        e @ PublishError::Store(_) => Status::unavailable(e.to_string()),
    }
}
