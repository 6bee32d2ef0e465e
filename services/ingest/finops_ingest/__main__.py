"""Run the ingest service: `python -m finops_ingest` (settings from the environment)."""

from __future__ import annotations

from finops_ingest.app import IngestSettings, create_app
from finops_runtime.serve import serve


def main() -> None:
    serve(IngestSettings(), create_app)


if __name__ == "__main__":
    main()
