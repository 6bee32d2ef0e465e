from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.focus_files import write_focus_csv
from tests.support.services import ServiceProcess


@pytest.fixture
def processes(service_env, tmp_path) -> Iterator[list[ServiceProcess]]:
    """Service processes started by a test; all stopped at its end, their logs shown on failure."""
    started: list[ServiceProcess] = []
    yield started
    for p in started:
        p.stop()


@pytest.fixture
def spawn(processes, service_env, tmp_path):
    def make(module: str, *, name: str, env: dict[str, str] | None = None, **kwargs) -> ServiceProcess:
        p = ServiceProcess(module, env={**service_env, **(env or {})}, log_dir=tmp_path, name=name, **kwargs)
        processes.append(p)
        return p

    return make


@pytest.fixture
def big_bill(tmp_path) -> Path:
    """20,000 lines over 25 accounts and 2 months: 400 batches of 50 lines."""
    return write_focus_csv(tmp_path / "bill.csv", rows=20_000, accounts=25, periods=2, seed=11)
