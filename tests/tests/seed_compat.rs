//! The original native sink's own four unit tests, unchanged but for their
//! `use` lines: the component-backed `ApprovalSink` is a drop-in replacement
//! (sync `new()`, sync exact `waiter_count()`, the `InvalidationSink` trait,
//! and `SystemClock` on tokio time so `start_paused` works).

mod seed {
    // Only these `use` lines differ from the original test module.
    use approval_host::{ApprovalSink, Decision, InvalidationSink};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn approval_resolves_waiting_agent() {
        let sink = Arc::new(ApprovalSink::new());
        let fut = sink.wait_for_approval("req-1", Duration::from_secs(30));
        let resolver = sink.clone();
        tokio::spawn(async move {
            resolver.on_approval_resolved("req-1", Decision::Approved);
        });
        assert_eq!(fut.await, Decision::Approved);
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_yields_pending_not_denied() {
        let sink = ApprovalSink::new();
        let decision = sink
            .wait_for_approval("req-2", Duration::from_secs(5))
            .await;
        assert_eq!(decision, Decision::Pending);
        assert_ne!(decision, Decision::Denied);
    }

    #[tokio::test]
    async fn waiter_count_tracks_registration_and_resolution() {
        let sink = ApprovalSink::new();
        let fut = sink.wait_for_approval("req-3", Duration::from_secs(30));
        assert_eq!(sink.waiter_count(), 1);
        sink.on_approval_resolved("req-3", Decision::Denied);
        assert_eq!(fut.await, Decision::Denied);
        assert_eq!(sink.waiter_count(), 0);
    }

    #[tokio::test]
    async fn policy_invalidation_is_accepted() {
        let sink = ApprovalSink::new();
        sink.on_policy_invalidated("agent-7");
        assert_eq!(sink.waiter_count(), 0);
    }
}
