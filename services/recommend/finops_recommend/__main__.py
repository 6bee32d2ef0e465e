"""Run the recommend service: `python -m finops_recommend` (settings from the environment)."""

from __future__ import annotations

from finops_recommend.app import RecommendSettings, create_app
from finops_runtime.serve import serve


def main() -> None:
    serve(RecommendSettings(), create_app)


if __name__ == "__main__":
    main()
