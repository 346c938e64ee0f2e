//! `assembly:approval/clock`: the guest reads the sink's host clock.

use super::StoreState;
use crate::bindings::assembly::approval::clock::Host;

impl Host for StoreState {
    fn now(&mut self) -> u64 {
        self.clock.now_ns()
    }
}
