"""Run the console service: `python -m finops_console` (settings from the environment)."""

from __future__ import annotations

from finops_console.app import ConsoleSettings, create_app
from finops_runtime.serve import serve


def main() -> None:
    serve(ConsoleSettings(), create_app)


if __name__ == "__main__":
    main()
