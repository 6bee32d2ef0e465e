"""Run the sandbox provider: `python -m finops_purchase.sandbox` (settings from the environment)."""

from __future__ import annotations

import uvicorn

from finops_purchase.sandbox.server import SandboxSettings, create_app
from finops_runtime.telemetry import configure_logging


def main() -> None:
    settings = SandboxSettings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    uvicorn.run(
        create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None, access_log=False
    )


if __name__ == "__main__":
    main()
