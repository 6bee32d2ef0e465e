"""Fault points for chaos tests: FINOPS_FAULTS="relay.after_publish@3" kills the process with SIGKILL
the third time that point is reached. Unset in production, where a fault point costs one dict lookup."""

from __future__ import annotations

import os
import signal
from collections import Counter

_armed: dict[str, int] = {}
_hits: Counter[str] = Counter()


def _parse(spec: str) -> dict[str, int]:
    armed = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, nth = item.partition("@")
        armed[name] = int(nth or 1)
    return armed


_armed.update(_parse(os.environ.get("FINOPS_FAULTS", "")))


def fault_point(name: str) -> None:
    """Die like `kill -9` when this point is armed and reached for the configured time."""
    if name not in _armed:
        return
    _hits[name] += 1
    if _hits[name] == _armed[name]:
        os.kill(os.getpid(), signal.SIGKILL)
