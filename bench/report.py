"""How every benchmark reports: a table on stdout and a JSON file of the results with the machine it ran on."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path


def cell(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    print(f"\n{title}\n")
    print(" | ".join(header))
    print(" | ".join("-" * len(h) for h in header))
    for row in rows:
        print(" | ".join(cell(v) for v in row))


def write_results(path: Path, benchmark: str, **payload: object) -> None:
    document = {
        "benchmark": benchmark,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "host": platform.node()},
        **payload,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwritten to {path}")
