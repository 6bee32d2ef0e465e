"""Bills for the decision loop: a month of on-demand compute that recommend plans a commitment from, and the
next month's first hours with that commitment in use, as a provider's FOCUS export shows them. The end-to-end
test and the demo use the same two files."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ACCOUNT = "444455556666"
COLUMNS = [
    "BillingAccountId", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "ChargeCategory", "BillingCurrency", "BilledCost", "EffectiveCost", "ListCost", "ProviderName", "ServiceName",
    "ServiceCategory", "RegionId", "ResourceId", "SkuId", "PricingCategory", "SubAccountId", "CommitmentDiscountId",
    "CommitmentDiscountCategory", "CommitmentDiscountStatus", "Tags",
]  # fmt: skip
SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)
OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
VERIFY_HOURS = 48


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def on_demand(hour: datetime) -> Decimal:
    """The web server's hourly on-demand cost (an m5.8xlarge and what runs with it): 6.00 at night, up to 8.30 in
    the evening."""
    return Decimal("6.00") + Decimal(hour.hour) / 10


def line(hour: datetime, period: datetime, **cost: str) -> dict[str, str]:
    end = (period + timedelta(days=32)).replace(day=1)
    return {
        "BillingAccountId": ACCOUNT, "BillingPeriodStart": iso(period), "BillingPeriodEnd": iso(end),
        "ChargePeriodStart": iso(hour), "ChargePeriodEnd": iso(hour + timedelta(hours=1)), "ChargeCategory": "Usage",
        "BillingCurrency": "USD", "ProviderName": "AWS", "ServiceName": "Amazon EC2", "ServiceCategory": "Compute",
        "RegionId": "us-east-1", "ResourceId": "i-0web", "SkuId": "BoxUsage:m5.8xlarge", "SubAccountId": "web-prod",
        "PricingCategory": "Standard", "CommitmentDiscountId": "", "CommitmentDiscountCategory": "",
        "CommitmentDiscountStatus": "", "Tags": '{"team": "payments"}', **cost,
    }  # fmt: skip


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def september(path: Path) -> Path:
    """A month of on-demand usage: what recommend plans a commitment from."""
    rows, hour = [], SEPTEMBER
    while hour < OCTOBER:
        cost = str(on_demand(hour))
        rows.append(line(hour, SEPTEMBER, BilledCost=cost, EffectiveCost=cost, ListCost=cost))
        hour += timedelta(hours=1)
    return write(path, rows)


def october(
    path: Path, *, commitment_id: str, per_hour: Decimal, covered: Decimal, hours: int = VERIFY_HOURS + 24
) -> tuple[Path, Decimal]:
    """The first hours of the next month, the commitment in use. Each hour it covers up to `covered` of on-demand
    usage (ListCost) at its amortized rate (EffectiveCost); an hour that uses less leaves the rest of its hourly
    commitment as an Unused line; usage above it stays on demand. Returns the file and the savings it shows, summed
    from the rows as written: ListCost - EffectiveCost of the covered lines, less the unused commitment."""
    rows, realized = [], Decimal(0)
    rate = per_hour / covered
    for h in range(hours):
        hour = OCTOBER + timedelta(hours=h)
        usage = on_demand(hour)
        used = min(usage, covered)
        effective = (used * rate).quantize(Decimal("0.0000000001"))
        unused = per_hour - effective
        commitment = dict(
            PricingCategory="Committed", CommitmentDiscountId=commitment_id, CommitmentDiscountCategory="Spend"
        )
        rows.append(
            line(
                hour,
                OCTOBER,
                BilledCost="0",
                EffectiveCost=str(effective),
                ListCost=str(used),
                CommitmentDiscountStatus="Used",
                **commitment,
            )  # fmt: skip
        )
        realized += used - effective
        if unused:
            rows.append(
                line(
                    hour,
                    OCTOBER,
                    BilledCost="0",
                    EffectiveCost=str(unused),
                    ListCost="0",
                    CommitmentDiscountStatus="Unused",
                    ResourceId=commitment_id,
                    **commitment,
                )  # fmt: skip
            )
            realized -= unused
        if usage > used:
            rest = str(usage - used)
            rows.append(line(hour, OCTOBER, BilledCost=rest, EffectiveCost=rest, ListCost=rest, ResourceId="i-0od"))
    return write(path, rows), realized
