"""FOCUS test files: a generator of synthetic Cost and Usage CSVs, and an independent reader of a file's own
totals (csv module + Decimal, sharing no code with the ingest service)."""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"  # absent on a clone without ../shared: tests that read it are marked `samples`
FOCUS_SAMPLE = SHARED / "data" / "focus" / "focus-1.0_multi-provider_aws-azure-oci_focus_sample_1000.csv"

COLUMNS = [
    "BillingAccountId",
    "BillingAccountName",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "BillingCurrency",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "ProviderName",
    "ServiceName",
    "ServiceCategory",
    "RegionId",
    "ResourceId",
    "SkuId",
    "ConsumedQuantity",
    "ConsumedUnit",
    "SubAccountId",
    "Tags",
]
TEAMS = ["payments", "search", "platform", "data", "ml"]
SERVICES = [
    ("Amazon EC2", "Compute"),
    ("Amazon S3", "Storage"),
    ("Amazon RDS", "Databases"),
    ("AWS Lambda", "Compute"),
    ("Amazon CloudFront", "Networking"),
]


def _amount(rng: random.Random) -> str:
    return str(Decimal(rng.randint(0, 10**9)) / Decimal(10**7))  # up to 100.0000000, exact digits


def write_focus_csv(
    path: Path,
    *,
    rows: int,
    accounts: int = 20,
    periods: int = 2,
    seed: int = 7,
    currencies: tuple[str, ...] = ("USD",),
) -> Path:
    """A FOCUS 1.0-shaped Cost and Usage file with `rows` usage lines spread over accounts and months."""
    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        for i in range(rows):
            account = f"{100000000000 + rng.randrange(accounts)}"
            month = 1 + rng.randrange(periods)
            start, end = f"2026-{month:02d}-01T00:00:00Z", f"2026-{month + 1:02d}-01T00:00:00Z"
            day = 1 + rng.randrange(27)
            service, category = rng.choice(SERVICES)
            tag_kind = rng.random()
            tags = (
                {"team": rng.choice(TEAMS)}
                if tag_kind < 0.5
                else {"application": f"app-{rng.randrange(8)}"}
                if tag_kind < 0.8
                else {}
            )
            billed = _amount(rng)
            out.writerow(
                [
                    account,
                    f"Account {account}",
                    start,
                    end,
                    f"2026-{month:02d}-{day:02d}T00:00:00Z",
                    f"2026-{month:02d}-{day + 1:02d}T00:00:00Z",
                    "Usage",
                    "",
                    currencies[i % len(currencies)],
                    billed,
                    _amount(rng),
                    billed,
                    billed,
                    "AWS",
                    service,
                    category,
                    "us-east-1",
                    f"i-{i:012x}",
                    f"SKU{rng.randrange(50)}",
                    str(rng.randint(1, 100)),
                    "Hours",
                    account,
                    json.dumps(tags),
                ]
            )
    return path


def file_totals(path: Path) -> dict[tuple[str, str], tuple[Decimal, Decimal, int]]:
    """BilledCost and EffectiveCost per (BillingAccountId, BillingCurrency), straight from the raw file."""
    totals: dict[tuple[str, str], list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    with path.open(newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            t = totals[(row["BillingAccountId"], row["BillingCurrency"])]
            t[0] += Decimal(row["BilledCost"])
            t[1] += Decimal(row["EffectiveCost"])
            t[2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in totals.items()}
