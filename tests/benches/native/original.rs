//! A faithful copy of the original native sink (tokio + DashMap), kept only
//! as the baseline of the benchmarks. Its defects (D1–D8 in SPEC.md §3.1) are
//! kept on purpose: this is what the component is measured against.

use approval_proto::Decision;
use dashmap::DashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The original waiter registry.
#[derive(Clone, Default)]
// Kept whole for fidelity; the benches use only part of it.
#[allow(dead_code)]
pub struct NativeSink {
    waiters: Arc<DashMap<String, oneshot::Sender<Decision>>>,
}

#[allow(dead_code)]
impl NativeSink {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts synchronously; the deadline starts at first poll (D7), and a
    /// timeout removes by key (D2).
    pub fn wait_for_approval(
        &self,
        request_id: impl Into<String>,
        timeout: Duration,
    ) -> impl Future<Output = Decision> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let id: String = request_id.into();
        self.waiters.insert(id.clone(), tx);
        let waiters = Arc::clone(&self.waiters);
        async move {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(decision)) => decision,
                _ => {
                    waiters.remove(&id);
                    Decision::Pending
                }
            }
        }
    }

    /// Removes and sends.
    pub fn on_approval_resolved(&self, request_id: &str, decision: Decision) {
        if let Some((_, tx)) = self.waiters.remove(request_id) {
            let _ = tx.send(decision);
        }
    }

    /// A no-op in the original.
    pub fn on_policy_invalidated(&self, _agent_id: &str) {}

    /// Entries in the map.
    pub fn waiter_count(&self) -> usize {
        self.waiters.len()
    }
}
