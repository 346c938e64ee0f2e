"""approval-sink for Python agent hosts: wait for a human approval without
polling, with the waiter registry running in a sandboxed WebAssembly
component (the same ``approval-registry`` the Rust adapter embeds).

>>> sink = ApprovalSink()
>>> decision = await sink.wait_for_approval("req-1", timeout=30)  # doctest: +SKIP
"""

from .clock import ManualClock, SystemClock
from .sink import ApprovalSink, default_config, invalidation_frame
from .trust import TrustedKey
from .types import APPROVED, CANCELLED, DENIED, RESET, TIMED_OUT, DecidedBy, Decision, Ending, GuestFault  # noqa: E501
from .types import IngestReport, Outcome, SinkConfig, SinkError, Stats

__all__ = [
    "ApprovalSink", "ManualClock", "TrustedKey", "DecidedBy", "SystemClock", "Decision", "Ending", "Outcome",
    "SinkConfig", "SinkError", "GuestFault", "Stats", "IngestReport", "default_config", "invalidation_frame",
    "APPROVED", "DENIED", "TIMED_OUT", "CANCELLED", "RESET",
]
