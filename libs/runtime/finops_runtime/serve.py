"""Running a service process: `python -m finops_<service>` calls `serve` with its settings and app factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import uvicorn

from finops_runtime.settings import Settings
from finops_runtime.telemetry import configure_logging

S = TypeVar("S", bound=Settings)


def serve(settings: S, create_app: Callable[[S], Any]) -> None:
    """Log as the settings say, and serve the app on the settings' host and port until stopped."""
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    uvicorn.run(
        create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None, access_log=False
    )
