//! `assembly:approval/host-events`: policy invalidations out of the guest.

use super::StoreState;
use crate::bindings::assembly::approval::host_events::Host;

impl Host for StoreState {
    fn policy_invalidated(&mut self, agent_id: String) {
        // No listener is not an error: invalidations are advisory (S10).
        let _ = self.invalidations.send(agent_id);
    }
}
