"""Reviewer keys a sink trusts (S17), read from the ``ID.pub`` files
``approval-sink keygen`` writes.

Verification is not here: the guest verifies every verdict's Ed25519
signature (it is the only parser of untrusted bytes), so this host needs no
crypto of its own. With keys configured, the sink applies only verdicts
signed by one of them; the rest are counted as ``unauthenticated`` and a
wait on their id times out to ``PENDING`` (never a forged ``APPROVED``).

File format (the Rust host's): one line, ``ID ed25519 BASE64``, the
standard base64 of the 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from .types import SinkError

PUBLIC_KEY_BYTES = 32
MAX_KEY_ID_BYTES = 256


@dataclass(frozen=True)
class TrustedKey:
    """A reviewer public key: the id verdicts name in ``key_id``, and the
    32-byte Ed25519 public key."""

    id: str
    public_key: bytes

    @classmethod
    def parse(cls, line: str) -> "TrustedKey":
        """Parses ``ID ed25519 BASE64``; raises :class:`SinkError`
        (``invalid-config``) for anything else."""
        parts = line.split()
        bad = SinkError("invalid-config", f"not a public key line (`ID ed25519 BASE64`): {line.strip()[:80]!r}")
        if len(parts) != 3 or parts[1] != "ed25519":
            raise bad
        try:
            key = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise bad from None
        if len(key) != PUBLIC_KEY_BYTES or not 0 < len(parts[0].encode()) <= MAX_KEY_ID_BYTES:
            raise bad
        return cls(parts[0], key)

    @classmethod
    def from_file(cls, path: Union[str, Path]) -> "TrustedKey":
        """Reads an ``ID.pub`` file."""
        return cls.parse(Path(path).read_text())
