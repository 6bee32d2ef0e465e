"""Run the allocation service: `python -m finops_allocation` (settings from the environment)."""

from __future__ import annotations

from finops_allocation.app import AllocationSettings, create_app
from finops_runtime.serve import serve


def main() -> None:
    serve(AllocationSettings(), create_app)


if __name__ == "__main__":
    main()
