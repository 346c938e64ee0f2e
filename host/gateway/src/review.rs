//! `ReviewService`: `Resolve` publishes a validated (and, with trusted
//! keys, verified) verdict, first wins; `Invalidate` publishes a policy
//! invalidation (SPEC.md §9).

// Without `nats` the backend has one variant; the matches stay, so the
// code reads the same with and without it.
#![cfg_attr(not(feature = "nats"), allow(clippy::infallible_destructuring_match))]

use crate::auth::authorized;
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
        let log = match &self.log {
            Backend::Memory(log) => log,
            #[cfg(feature = "nats")]
            Backend::Nats(log) => {
                // The log enforces first-wins; only the signature is ours.
                if let Some(reviewers) = &self.reviewers {
                    reviewers.verify(&resolved)?;
                }
                let seq = crate::nats::resolve(log, &resolved).await?;
                return Ok(Response::new(PublishReply { seq }));
            }
        };
        let seq = match &self.reviewers {
            None => log.publish(Event::ApprovalResolved(resolved)),
            Some(reviewers) => {
                let verdict = reviewers.verify(&resolved)?;
                let id = resolved.request_id.clone();
                reviewers.first_wins(&id, verdict, || {
                    log.publish(Event::ApprovalResolved(resolved))
                })?
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
            Backend::Memory(log) => log.publish(Event::PolicyInvalidated(invalidated)),
            #[cfg(feature = "nats")]
            Backend::Nats(log) => crate::nats::invalidate(log, &invalidated).await?,
        };
        Ok(Response::new(PublishReply { seq }))
    }
}
