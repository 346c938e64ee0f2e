"""The Python host's suite: run by `tests/tests/python.rs` (the README's
test command) with the component it exports in `$APPROVAL_SINK_WASM`."""

import asyncio
import os

import pytest

from approval_sink import ApprovalSink, ManualClock, SinkConfig


def run(coro):
    """Runs one test body on a fresh event loop."""
    return asyncio.run(coro)


@pytest.fixture
def make_sink():
    """A factory of sinks on a virtual clock: `sink, clock = make_sink()`."""

    def make(config: SinkConfig = None):
        clock = ManualClock()
        return ApprovalSink(config, clock=clock), clock

    return make


def pytest_report_header(config):
    return f"approval-registry component: {os.environ.get('APPROVAL_SINK_WASM', '(package default)')}"
