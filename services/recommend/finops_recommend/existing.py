"""Commitments already held, with their expiry dates, from three sources:

- the cost lines: every CommitmentDiscountId that covered usage or went unused, with what it covered and cost,
  and its recurring fees on Purchase rows (`usage.commitment_usage`); its size is measured from them (from the
  fees alone, at the price table's discount, when nothing used it yet); its expiry is not in the lines;
- a FOCUS Contract Commitment dataset (1.3, or 1.4 with its extra columns) uploaded to the service: id, period
  start and end, cost, and a description that names the program, term and payment (`parse_contract_commitments`);
- the purchase service's reports (finops.purchase.v1 CommitmentPurchased), joined to the decision service's
  purchase request (finops.decision.v1) for what the commitment covers: counted from its start.

`holdings` merges them per commitment id (a purchase's or a dataset row's terms win over the lines', the lines'
measured size wins over a size derived from list discounts) and places each in a pool: its scoped pool (family and
region) when that pool is planned, else its account's flexible pool. A commitment whose end no source gives is
kept for the whole plan: assuming it lasts under-buys, the cheap side of the mistake.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from finops_recommend.prices import NO_UPFRONT, PriceTable, Program, UnknownRate
from finops_recommend.usage import pool_key, program_of, scoped_program_of

HOURS_PER_MONTH = 730
FLEXIBLE = frozenset({Program.AWS_COMPUTE_SAVINGS_PLAN, Program.AZURE_SAVINGS_PLAN, Program.GCP_FLEXIBLE_CUD})


class InvalidCommitments(ValueError):
    """A Contract Commitment upload that cannot be read; the message names the row and column to fix."""


@dataclass(frozen=True)
class KnownCommitment:
    """A commitment with its terms, from a Contract Commitment dataset row or a reported purchase."""

    commitment_id: str
    source: str
    program: Program | None
    starts_at: datetime
    ends_at: datetime | None
    term_months: int | None = None
    payment: str | None = None
    billing_account_id: str | None = None
    provider_name: str | None = None
    scope: Mapping[str, str] = field(default_factory=dict)
    commitment_per_hour: Decimal | None = None
    covered_usage_per_hour: Decimal | None = None
    currency: str | None = None
    category: str | None = None
    description: str | None = None
    dry_run: bool = False


@dataclass(frozen=True)
class LineStats:
    """What the cost lines say of one commitment over its recent hours (from `commitment_usage`)."""

    commitment_id: str
    billing_account_id: str
    provider_name: str
    category: str
    currency: str
    first_seen: datetime
    last_seen: datetime
    hours: int
    """Hours of the recent window the sums below cover."""
    covered: Decimal
    used_cost: Decimal
    unused_cost: Decimal
    purchase_cost: Decimal = Decimal(0)
    """Its recurring fees billed on Purchase rows (a no-upfront commitment's cost per hour, whether used or not)."""
    region_id: str = ""
    family: str = ""
    """Where most of what it covered ran (for a commitment scoped to a family and region)."""


@dataclass(frozen=True)
class Holding:
    """An existing commitment as the planner sees it."""

    commitment_id: str
    pool: str
    program: str
    capacity_per_hour: float
    """On-demand-equivalent usage it covers per hour."""
    discount: float
    starts_at: datetime
    ends_at: datetime | None
    """None when no source says when it ends: then it is held over the whole plan."""
    sources: tuple[str, ...]
    currency: str
    dry_run: bool = False


# --- the Contract Commitment dataset --------------------------------------------------------------------------

REQUIRED = ("ContractCommitmentId", "ContractCommitmentPeriodStart", "ContractCommitmentPeriodEnd")
_TERM = (
    (re.compile(r"(?<!\d)3\s*-?\s*y(?:ea)?r|p3y|thirty_six_month|36\s*-?\s*month", re.I), 36),
    (re.compile(r"(?<!\d)1\s*-?\s*y(?:ea)?r|p1y|twelve_month|12\s*-?\s*month", re.I), 12),
)
_PAYMENT = (
    (re.compile(r"no\s*-?\s*upfront", re.I), "no_upfront"),
    (re.compile(r"partial\s*-?\s*upfront", re.I), "partial_upfront"),
    (re.compile(r"all\s*-?\s*upfront", re.I), "all_upfront"),
)
_INACTIVE = frozenset({"proposed", "pending", "canceled", "cancelled", "superseded"})


def program_from(text: str, category: str = "") -> Program | None:
    """The commitment program a description, type or id names (None for contract minimums and the like)."""
    t = text.lower().replace(" ", "").replace("_", "").replace("-", "")
    if "computesavingsplan" in t:
        return Program.AWS_COMPUTE_SAVINGS_PLAN
    if "ec2instancesavingsplan" in t or "instancesavingsplan" in t:
        return Program.AWS_EC2_INSTANCE_SAVINGS_PLAN
    if "reservedinstance" in t or "reservedinstances" in t:
        return Program.AWS_STANDARD_RESERVED_INSTANCE
    if "azuresavingsplan" in t or "microsoft.billingbenefits/savingsplans" in t:
        return Program.AZURE_SAVINGS_PLAN
    if "reservationorder" in t or "microsoft.capacity" in t or ("azure" in t and "reservation" in t):
        return Program.AZURE_RESERVATION
    if "resourcebasedcud" in t or ("compute.googleapis.com" in t and category.lower() == "usage"):
        return Program.GCP_RESOURCE_CUD
    if "spendbasedcud" in t or "flexiblecud" in t or ("compute.googleapis.com" in t and category.lower() == "spend"):
        return Program.GCP_FLEXIBLE_CUD
    if "savingsplan" in t and "arn:aws" in t:
        return Program.AWS_COMPUTE_SAVINGS_PLAN
    return None


def _timestamp(value: str, row: int, column: str) -> datetime:
    text = value.strip().replace(" ", "T")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidCommitments(f"row {row}: {column} {value!r} is not an ISO 8601 date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _decimal(value: str, row: int, column: str) -> Decimal | None:
    if value is None or str(value).strip() in ("", "NULL", "null"):
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise InvalidCommitments(f"row {row}: {column} {value!r} is not a decimal number") from exc


def parse_contract_commitments(
    rows: Iterable[Mapping[str, Any]], *, billing_account_id: str | None = None
) -> tuple[list[KnownCommitment], list[str]]:
    """Commitments from FOCUS Contract Commitment rows, and a note for each row that is not a commitment discount
    the planner can use (a contract minimum, a canceled one...). Raises InvalidCommitments on a malformed row."""
    found: list[KnownCommitment] = []
    skipped: list[str] = []
    for n, raw in enumerate(rows, start=1):
        row = {str(k).strip(): ("" if v is None else str(v)) for k, v in raw.items()}
        missing = [c for c in REQUIRED if not row.get(c, "").strip()]
        if missing:
            raise InvalidCommitments(
                f"row {n}: {', '.join(missing)} missing; a Contract Commitment row needs {', '.join(REQUIRED)}"
            )
        cid = row["ContractCommitmentId"].strip()
        status = row.get("ContractCommitmentLifecycleStatus", "").strip().lower()
        if status in _INACTIVE:
            skipped.append(f"{cid}: lifecycle status {status}")
            continue
        category = row.get("ContractCommitmentCategory", "").strip()
        described = " ".join(row.get(c, "") for c in ("ContractCommitmentDescription", "ContractCommitmentType"))
        program = program_from(f"{described} {cid}", category)
        if program is None:
            skipped.append(f"{cid}: {described.strip() or 'no description'} is not a commitment discount program")
            continue
        start = _timestamp(row["ContractCommitmentPeriodStart"], n, "ContractCommitmentPeriodStart")
        end = _timestamp(row["ContractCommitmentPeriodEnd"], n, "ContractCommitmentPeriodEnd")
        if end <= start:
            raise InvalidCommitments(f"row {n}: ContractCommitmentPeriodEnd is not after ContractCommitmentPeriodStart")
        hours = Decimal((end - start).total_seconds()) / 3600
        term = next((months for pattern, months in _TERM if pattern.search(described)), None)
        if term is None:
            months = float(hours) / HOURS_PER_MONTH
            term = 36 if months > 24 else 12
        payment = row.get("ContractCommitmentPaymentModel", "").strip().lower().replace(" ", "_") or next(
            (p for pattern, p in _PAYMENT if pattern.search(described)), NO_UPFRONT
        )
        cost = _decimal(row.get("ContractCommitmentCost", ""), n, "ContractCommitmentCost")
        per_hour = cost / hours if cost is not None else None
        currency = row.get("BillingCurrency", "").strip() or None
        if per_hour is not None and currency is None:
            raise InvalidCommitments(f"row {n}: BillingCurrency missing for a commitment with a cost")
        percent = "ContractCommitmentDiscountPercentage"  # FOCUS 1.4
        discount = _decimal(row.get(percent, ""), n, percent)
        covered = None
        if per_hour is not None and discount is not None and 0 < discount < 100:
            covered = per_hour / (1 - discount / 100)
        found.append(
            KnownCommitment(
                commitment_id=cid,
                source="contract_dataset",
                program=program,
                starts_at=start,
                ends_at=end,
                term_months=term,
                payment=payment,
                billing_account_id=(row.get("BillingAccountId") or row.get("x_BillingAccountId") or "").strip()
                or billing_account_id,
                scope=_scope_from_id(cid),
                commitment_per_hour=per_hour,
                covered_usage_per_hour=covered,
                currency=currency,
                category=category or None,
                description=described.strip() or None,
            )
        )
    return found, skipped


def _scope_from_id(commitment_id: str) -> dict[str, str]:
    """The region an id names (an AWS ARN's or a GCP commitment's), when it names one."""
    m = re.match(r"arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]+):", commitment_id)
    if m and m.group(1):
        return {"region": m.group(1)}
    m = re.search(r"/regions/([a-z0-9-]+)/", commitment_id)
    return {"region": m.group(1)} if m else {}


# --- merging ----------------------------------------------------------------------------------------------------


def _rate(prices: PriceTable, program: Program, term: int | None, payment: str | None) -> float:
    for t in ([term] if term else []) + [36, 12]:
        try:
            return float(prices.rate(program, t, payment or NO_UPFRONT).discount)
        except UnknownRate:
            try:
                return float(prices.rate(program, t).discount)
            except UnknownRate:
                continue
    return 0.0


def holdings(
    lines: Sequence[LineStats],
    known: Sequence[KnownCommitment],
    *,
    now: datetime,
    planned_pools: set[str],
    prices: PriceTable | None = None,
    count_dry_runs: bool = True,
) -> list[Holding]:
    """Every commitment active at or after `now`, placed in a pool, with its size in on-demand-equivalent usage per
    hour: the purchase's covered usage, else what the lines measured (covered usage plus the unused cost at the
    realized rate), else the dataset's cost per hour at the price table's discount."""
    table = prices or PriceTable()
    by_id = {s.commitment_id: s for s in lines}
    known_by_id: dict[str, KnownCommitment] = {}
    for k in sorted(known, key=lambda k: k.source != "purchase"):  # a purchase's terms first
        known_by_id.setdefault(k.commitment_id, k)
    out = []
    for cid in sorted(set(by_id) | set(known_by_id)):
        k, s = known_by_id.get(cid), by_id.get(cid)
        if k is not None and k.dry_run and not count_dry_runs:
            continue
        if k is not None and k.ends_at is not None and k.ends_at <= now:
            continue
        provider = (k.provider_name if k else None) or (s.provider_name if s else "")
        account = (s.billing_account_id if s else None) or (k.billing_account_id if k else None)
        if not account:
            continue  # nowhere to place it: the upload response says so
        program = k.program if k and k.program else None
        if program is None and s is not None:
            scoped = s.category.lower() == "usage"
            program = scoped_program_of(provider) if scoped else program_of(provider)
            if program is None:
                program = program_from(cid, s.category)
        if program is None:
            continue
        scope = dict(k.scope) if k else {}
        region = scope.get("region") or (s.region_id if s else "")
        family = scope.get("instance_family") or (s.family if s else "")
        flexible = program_of(provider) or (program if program in FLEXIBLE else None)
        scoped_program = scoped_program_of(provider)
        pool = pool_key(flexible, account) if flexible else pool_key(program, account)
        if program not in FLEXIBLE and family and scoped_program is not None:
            candidate = pool_key(scoped_program, account, region, family)
            if candidate in planned_pools:
                pool = candidate
        realized = None
        if s is not None and s.covered > 0 and s.used_cost >= 0:
            realized = float(1 - s.used_cost / s.covered)
        discount = (
            realized
            if realized is not None and 0 < realized < 1
            else _rate(table, program, k.term_months if k else None, k.payment if k else None)
        )
        capacity: float | None = None
        if k is not None and k.covered_usage_per_hour is not None:
            capacity = float(k.covered_usage_per_hour)
        elif s is not None and s.hours > 0 and (s.covered > 0 or s.unused_cost > 0):
            capacity = (float(s.covered) + float(s.unused_cost) / max(1 - discount, 1e-9)) / s.hours
        elif k is not None and k.commitment_per_hour is not None:
            capacity = float(k.commitment_per_hour) / max(1 - discount, 1e-9)
        elif s is not None and s.hours > 0 and s.purchase_cost > 0:
            capacity = float(s.purchase_cost) / s.hours / max(1 - discount, 1e-9)  # only its fees are billed yet
        if not capacity or capacity <= 0:
            continue
        start = min(x for x in ((k.starts_at if k else None), (s.first_seen if s else None)) if x is not None)
        out.append(
            Holding(
                commitment_id=cid,
                pool=pool,
                program=program.value,
                capacity_per_hour=capacity,
                discount=discount,
                starts_at=start,
                ends_at=k.ends_at if k else None,
                sources=tuple(x for x in ((k.source if k else None), ("cost_lines" if s else None)) if x),
                currency=(s.currency if s else None) or (k.currency if k else None) or "USD",
                dry_run=bool(k and k.dry_run),
            )
        )
    return out
