"""Run the purchase service: `python -m finops_purchase` (settings from the environment)."""

from __future__ import annotations

from finops_purchase.app import PurchaseSettings, create_app
from finops_runtime.serve import serve


def main() -> None:
    serve(PurchaseSettings(), create_app)


if __name__ == "__main__":
    main()
