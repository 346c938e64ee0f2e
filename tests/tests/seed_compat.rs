//! The original native sink's own four unit tests, unchanged but for their
//! `use` lines: the component-backed `ApprovalSink` is a drop-in replacement
//! (sync `new()`, sync exact `waiter_count()`, the `InvalidationSink` trait,
//! and `SystemClock` on tokio time so `start_paused` works). The second
//! module holds the call shapes of the original's signatures that callers
//! use (`impl Into<String>` ids, the trait as `dyn`).

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

/// The original's signatures as callers use them: ids passed as `String`,
/// `&String` or `&str`, futures spawned as tasks, the trait as `dyn`.
mod call_shapes {
    use approval_host::{ApprovalSink, Decision, InvalidationSink};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn ids_may_be_owned_strings_borrowed_strings_or_str() {
        let sink = ApprovalSink::new();
        let owned = sink.wait_for_approval(format!("drop-{}", 1), Duration::from_secs(30));
        let id = String::from("drop-2");
        let borrowed = sink.wait_for_approval(&id, Duration::from_secs(30));
        let literal = sink.wait_for_approval("drop-3", Duration::from_secs(30));
        let detailed = sink.wait(String::from("drop-4"), Duration::from_secs(30));
        assert_eq!(sink.waiter_count(), 4);
        for i in 1..=4 {
            sink.on_approval_resolved(&format!("drop-{i}"), Decision::Approved);
        }
        assert_eq!(owned.await, Decision::Approved);
        assert_eq!(borrowed.await, Decision::Approved);
        assert_eq!(literal.await, Decision::Approved);
        assert!(detailed.await.is_ok());
    }

    #[tokio::test]
    async fn futures_spawn_as_tasks_and_the_trait_works_as_dyn() {
        let sink = ApprovalSink::new();
        let task =
            tokio::spawn(sink.wait_for_approval(String::from("req-9"), Duration::from_secs(30)));
        let events: Arc<dyn InvalidationSink + Send + Sync> = Arc::new(sink.clone());
        events.on_policy_invalidated("agent-7");
        events.on_approval_resolved("req-9", Decision::Denied);
        assert_eq!(task.await.unwrap(), Decision::Denied);
    }
}
