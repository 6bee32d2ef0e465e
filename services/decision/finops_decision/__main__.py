"""Run the decision service: `python -m finops_decision` (settings from the environment)."""

from __future__ import annotations

from finops_decision.app import DecisionSettings, create_app
from finops_runtime.serve import serve


def main() -> None:
    serve(DecisionSettings(), create_app)


if __name__ == "__main__":
    main()
