"""The README's Python snippet, and
`host/python/examples/agent_tool_approval.py` run exactly as the README
shows it: the shell block after the README's `python-example` marker, line
by line (`approval-sink` is the binary the harness built, `python` this
interpreter, the gateway's port a free one instead of 50051, and `~` a
fresh home directory, so the tokens and the gateway's durable log, in its
default place under `~/.local/share`, are this run's)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from test_grpc import Gateway, binary, free_port

REPO = Path(__file__).resolve().parents[2]
MARKER = "<!-- python-example: run by tests/py/test_example.py -->"


def readme_block() -> list:
    readme = (REPO / "README.md").read_text()
    assert MARKER in readme, "the README shows the example after its marker"
    block = re.search(r"```sh\n(.*?)```", readme.split(MARKER, 1)[1], re.S)
    assert block, "a sh block follows the marker"
    return [line.split(" #", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_runs_the_agent_example(tmp_path):
    lines = readme_block()
    port = str(free_port())
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)
    agent = None
    gateway = None
    try:
        for line in lines:
            background = line.endswith("&")
            argv = shlex.split(line.rstrip("&").replace("50051", port).replace("~/", f"{home}/"))
            if argv == ["wait"]:
                out, _ = agent.communicate(timeout=120)
                assert agent.returncode == 0, out
                continue
            if argv[0] == "approval-sink" and argv[1] == "gateway":
                assert background, line
                # Waits for "gateway listening"; the README's own flags.
                gateway = Gateway(int(port), *argv[2:], exactly=True, cwd=REPO, env=env).__enter__()
                continue
            argv[0] = {"approval-sink": binary(), "python": sys.executable}[argv[0]]
            if background:
                agent = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True, env=env)
            else:
                done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
                assert done.returncode == 0, done
        assert agent is not None and agent.returncode == 0, "the block runs the agent and waits for it"
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
        if gateway is not None:
            gateway.stop()
    # The gateway kept its log where a user's gateway keeps it by default.
    assert (home / ".local/share/approval-sink/gateway/log.sqlite3").exists()
    got = out.splitlines()
    assert "read_calendar: runs without approval -> 3 meetings today" in got, out
    assert "send_email: APPROVED by cli -> email sent to the team" in got, out
    assert "delete_files: DENIED -> skipped" in got, out
    assert "post_announcement: PENDING (nobody answered in time) -> local fallback: kept as a draft" in got, out
    assert got[-1] == "done: 1 risky calls ran; 2 verdicts, 1 timed out", out


def test_the_readme_python_snippet_runs_as_written():
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Python\n", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S)
    assert snippet, "the Python section shows a snippet"
    done = subprocess.run([sys.executable, "-c", snippet.group(1)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done
    assert done.stdout.split() == ["APPROVED", "PENDING"], done
