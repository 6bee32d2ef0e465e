"""Run the notify service: `python -m finops_notify` (settings from the environment)."""

from __future__ import annotations

from finops_notify.app import NotifySettings, create_app
from finops_runtime.serve import serve


def main() -> None:
    serve(NotifySettings(), create_app)


if __name__ == "__main__":
    main()
