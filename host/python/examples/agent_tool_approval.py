"""An asyncio agent loop that asks a human before each risky tool call.

The agent plans a few tool calls. Before a risky one it registers a wait for
a reviewer's verdict (``request id = RUN:TOOL``) and blocks on it; the
verdict arrives over the gateway's event stream (``approval-sink resolve``
publishes one). Approved: the tool runs. Denied: it is skipped. Pending (no
human answered within the timeout): the *local fallback* applies, which is
never "go ahead": here the tool's output is kept as a draft for later.

    approval-sink gateway &
    python host/python/examples/agent_tool_approval.py --gateway 127.0.0.1:50051 --run-id demo --timeout 5
    approval-sink resolve --gateway http://127.0.0.1:50051 --request-id demo:send_email --approve
    approval-sink resolve --gateway http://127.0.0.1:50051 --request-id demo:delete_files --deny

Needs the package with its ``grpc`` extra (``pip install './host/python[grpc]'``),
or ``nats`` for ``--nats nats://127.0.0.1:4222`` (the JetStream log).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from typing import Awaitable, Callable, List

from approval_sink import ApprovalSink, Decision, Ending, SinkConfig, TrustedKey


@dataclass
class Tool:
    """A tool the agent may call; ``risky`` ones need a human's approval."""

    name: str
    risky: bool
    run: Callable[[], Awaitable[str]]


async def read_calendar() -> str:
    return "3 meetings today"


async def send_email() -> str:
    return "email sent to the team"


async def delete_files() -> str:
    return "12 files deleted"


async def post_announcement() -> str:
    return "announcement posted"


PLAN: List[Tool] = [
    Tool("read_calendar", False, read_calendar),
    Tool("send_email", True, send_email),
    Tool("delete_files", True, delete_files),
    Tool("post_announcement", True, post_announcement),
]


async def agent(sink: ApprovalSink, run_id: str, timeout: float) -> int:
    """Runs the plan; returns how many risky calls ran."""
    ran = 0
    for tool in PLAN:
        if not tool.risky:
            print(f"{tool.name}: runs without approval -> {await tool.run()}", flush=True)
            continue
        request_id = f"{run_id}:{tool.name}"
        # Registered before the first await (S1): a verdict that arrives
        # while this line runs is not lost.
        wait = sink.wait(request_id, timeout)
        print(f"{tool.name}: waiting up to {timeout:g}s for approval of {request_id}", flush=True)
        outcome = await wait
        decision = outcome.verdict
        if decision is Decision.APPROVED:
            by = outcome.decided_by
            who = f" by {by.reviewer}" if by and by.reviewer else ""
            print(f"{tool.name}: APPROVED{who} -> {await tool.run()}", flush=True)
            ran += 1
        elif decision is Decision.DENIED:
            print(f"{tool.name}: DENIED -> skipped", flush=True)
        else:
            # A timeout is never a denial and never an approval.
            why = "nobody answered in time" if outcome.ending is Ending.TIMED_OUT else outcome.ending.value
            print(f"{tool.name}: PENDING ({why}) -> local fallback: kept as a draft", flush=True)
    return ran


async def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--gateway", default="127.0.0.1:50051", help="the gateway's host:port")
    args.add_argument("--nats", help="follow this NATS JetStream log (URL[,URL]) instead of a gateway")
    args.add_argument("--run-id", default="demo", help="prefix of this run's request ids")
    args.add_argument("--timeout", type=float, default=30.0, help="seconds to wait per approval")
    args.add_argument("--token-file", help="bearer token for Subscribe (file)")
    args.add_argument("--ca", help="trust this CA (PEM) and use TLS")
    args.add_argument(
        "--trusted-key", action="append", default=[],
        help="apply only verdicts signed by this reviewer key (ID.pub; repeatable)",
    )
    opts = args.parse_args()
    keys = tuple(TrustedKey.from_file(path) for path in opts.trusted_key)
    sink = ApprovalSink(SinkConfig(trusted_keys=keys))
    token = open(opts.token_file).read().strip() if opts.token_file else None
    if opts.nats:
        from approval_sink import nats

        source = nats.pump(sink, nats.NatsSource(opts.nats, token=token, ca_file=opts.ca))
    else:
        from approval_sink import grpc

        roots = open(opts.ca, "rb").read() if opts.ca else None
        source = grpc.pump(sink, grpc.GrpcSource(opts.gateway, token=token, root_certificates=roots))
    try:
        ran = await agent(sink, opts.run_id, opts.timeout)
    finally:
        source.cancel()
    stats = sink.stats()
    print(f"done: {ran} risky calls ran; {stats.delivered + stats.early_hits} verdicts, {stats.timed_out} timed out", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
