"""The usage model: from a batch of cost lines (an Arrow frame), exact sums per commitment pool and hour (or day,
when the bill is daily), net of the commitments already held; and the daily cost of every resource, for the
rightsizing, idle and anomaly rules.

A commitment pool is the usage one commitment program can cover. The programs planned by default are the
flexible ones, which apply across regions and instance families of a billing account: AWS Compute Savings Plans
(EC2, Fargate and Lambda are all service category Compute), Azure savings plans for compute and GCP flexible
(spend-based) committed use discounts. The pool key is `<program>/<billing account>`.

On-demand-equivalent cost of a line, what it would have cost with no commitment:
- a line a commitment covered (CommitmentDiscountStatus `Used`): its ContractedCost, else its ListCost, else its
  EffectiveCost (the amortized commitment cost: no savings visible);
- an unused-commitment line (`Unused`): nothing; it is commitment cost that covered no usage (waste). It is a
  Usage line in FOCUS exports, or a commitment's recurring fee (a Purchase line) in a converted CUR, whose
  EffectiveCost is the unused part: either way its EffectiveCost is the unused commitment cost;
- any other usage line: its EffectiveCost, what was paid on demand.
The planner sees the gross on-demand-equivalent usage and the existing commitments as tranches with their expiry
(see `commitments`), so that an expiry is replaced in time; only usage covered by a commitment the lines do not
name (no CommitmentDiscountId) is netted out, having no expiry to anticipate.

Narrower pools: usage of one instance family in one region, which EC2 Instance Savings Plans and RIs, Azure
reservations and GCP resource-based CUDs can cover at a deeper discount (`family_usage`). The family comes from
the instance type named in the SKU or resource id (`m5.large`, `Standard_D4s_v5`, `n2-standard-8`); lines that
name none stay in the flexible pool only.

Commitments seen in the lines (`commitment_usage`): per CommitmentDiscountId and hour, the usage it covered at
on-demand rates, what that cost, its unused part and its purchase fees; `existing` in the analysis turns them
into tranches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from finops_contracts.costframe import widest_decimal
from finops_recommend.prices import Program
from finops_recommend.sizes import instance_type_of

UNALLOCATED = "unallocated"
KPI_AMOUNTS = ("on_demand_equivalent", "covered", "commitment_cost", "unused_commitment_cost", "on_demand_cost")
POOL_AMOUNTS = (*KPI_AMOUNTS, "commitment_fee")
"""`commitment_fee`: the recurring fees of the pool's commitments, as billed. An amortized bill spreads them over
the usage they cover (commitment_cost); an actual-cost bill (Azure's actual export) does not, and there they are
the only measure of what the commitments cost (see analysis.kpis)."""
POOL_KEYS = ("billing_account_id", "provider_name", "pool", "bucket", "grain_hours", "billing_currency", "team")
RESOURCE_KEYS = (
    "billing_account_id", "sub_account_id", "provider_name", "region_id", "service_name", "service_category",
    "resource_id", "team", "snapshot", "day", "billing_currency", "instance_type",
)  # fmt: skip
RESOURCE_AMOUNTS = ("effective_cost", "billed_cost")

FAMILY_KEYS = ("billing_account_id", "provider_name", "region_id", "family", "bucket", "grain_hours",
               "billing_currency", "team")  # fmt: skip
FAMILY_AMOUNTS = KPI_AMOUNTS
COMMITMENT_KEYS = ("billing_account_id", "provider_name", "commitment_id", "category", "region_id", "family",
                   "bucket", "grain_hours", "billing_currency")  # fmt: skip
COMMITMENT_AMOUNTS = ("covered", "used_cost", "unused_cost", "purchase_cost")

_PROGRAMS = (
    (("amazon", "aws"), Program.AWS_COMPUTE_SAVINGS_PLAN, Program.AWS_EC2_INSTANCE_SAVINGS_PLAN),
    (("microsoft", "azure"), Program.AZURE_SAVINGS_PLAN, Program.AZURE_RESERVATION),
    (("google", "gcp"), Program.GCP_FLEXIBLE_CUD, Program.GCP_RESOURCE_CUD),
)
_FAMILY_PATTERNS = (
    # EC2 instance types: m5.large, c6gn.16xlarge, u-6tb1.metal
    (Program.AWS_EC2_INSTANCE_SAVINGS_PLAN, re.compile(
        r"(?<![a-z0-9])([a-z][a-z0-9-]*\d[a-z0-9-]*)\.(?:nano|micro|small|medium|large|\d*xlarge|metal)"),
     lambda m: m.group(1)),
    # Azure VM sizes: Standard_D4s_v5 -> Dsv5 (the instance size flexibility group)
    (Program.AZURE_RESERVATION, re.compile(r"standard_([a-z]+)\d+(?:-\d+)?([a-z]*)(?:_v(\d+))?", re.IGNORECASE),
     lambda m: f"{m.group(1).upper()}{m.group(2).lower()}" + (f"v{m.group(3)}" if m.group(3) else "")),
    # GCP machine types: n2-standard-8 -> n2
    (Program.GCP_RESOURCE_CUD, re.compile(
        r"(?<![a-z0-9])(n1|n2|n2d|n4|e2|c2|c2d|c3|c3d|c4|c4a|m1|m2|m3|t2d|t2a|a2|a3|g2|h3)-"
        r"(?:standard|highmem|highcpu|megamem|ultramem|custom|micro|small|medium|highgpu)"),
     lambda m: m.group(1)),
)  # fmt: skip


def program_of(provider_name: str) -> Program | None:
    """The flexible commitment program planned for a provider's compute, None for providers the price table
    lacks."""
    name = provider_name.lower()
    for words, program, _ in _PROGRAMS:
        if any(w in name for w in words):
            return program
    return None


def scoped_program_of(provider_name: str) -> Program | None:
    """The family-and-region program planned for a provider: EC2 Instance Savings Plans, Azure reservations, GCP
    resource-based CUDs."""
    name = provider_name.lower()
    for words, _, program in _PROGRAMS:
        if any(w in name for w in words):
            return program
    return None


def family_of(provider_name: str, *names: str | None) -> str | None:
    """The instance family named in any of `names` (SKU id, resource id...), for the provider's scoped program."""
    program = scoped_program_of(provider_name)
    for prog, pattern, family in _FAMILY_PATTERNS:
        if prog is not program:
            continue
        for name in names:
            if name and (m := pattern.search(name.lower() if prog is not Program.AZURE_RESERVATION else name)):
                return family(m)
    return None


def pool_key(program: Program | str, billing_account_id: str, region: str | None = None,
             family: str | None = None) -> str:  # fmt: skip
    """`<program>/<billing account>` for a flexible pool, `<program>/<account>/<region>/<family>` for a scoped one."""
    key = f"{Program(program).value}/{billing_account_id}"
    return key if family is None else f"{key}/{region or ''}/{family}"


def _teams(frame: pa.Table) -> pa.Array:
    """The `team` key column of the usage tables: always "unallocated" here. This service never derives an owner;
    the repository reads each resource's owner from resource_owner (ResourceOwned, published by allocation)."""
    return pa.array([UNALLOCATED] * frame.num_rows, pa.string())


def _common(frame: pa.Table, names: tuple[str, ...]) -> tuple[pa.DataType, dict[str, pa.ChunkedArray]]:
    target = widest_decimal(frame.schema.field(n).type for n in names)
    return target, {n: frame.column(n).cast(target) for n in names}


def pool_usage(frame: pa.Table) -> pa.Table:
    """Exact sums per pool, bucket (an hour, or a day for daily lines) and team of a batch's compute usage."""
    programs = {p: program_of(p) for p in pc.unique(frame.column("provider_name")).to_pylist()}
    eligible = pc.and_(
        pc.equal(pc.fill_null(frame.column("service_category"), ""), "Compute"),
        pc.is_in(
            frame.column("provider_name"), pa.array([p for p, g in programs.items() if g is not None], pa.string())
        ),
    )
    eligible = pc.and_(eligible, pc.is_in(frame.column("charge_category"), pa.array(["Usage", "Purchase"])))
    lines = frame.filter(eligible)
    if lines.num_rows == 0:
        return pa.table({k: [] for k in (*POOL_KEYS, *POOL_AMOUNTS)})
    p = _priced(lines)
    bucket, grain = _buckets(lines)
    pools = pa.array(
        [pool_key(programs[n], a) for n, a in zip(lines.column("provider_name").to_pylist(),
                                                  lines.column("billing_account_id").to_pylist(), strict=True)],
        pa.string(),
    )  # fmt: skip
    table = pa.table(
        {
            "billing_account_id": lines.column("billing_account_id"),
            "provider_name": lines.column("provider_name"),
            "pool": pools,
            "bucket": bucket,
            "grain_hours": grain,
            "billing_currency": lines.column("billing_currency"),
            "team": _teams(lines),
            **_kpi_amounts(p),
            "commitment_fee": pc.if_else(_recurring_fee(lines), pc.fill_null(p.billed, p.zero), p.zero),
        }
    )
    return _sum(table, POOL_KEYS, POOL_AMOUNTS)


def _recurring_fee(lines: pa.Table) -> pa.ChunkedArray:
    """A commitment's recurring purchase line: its fee for its hour or day (a one-time, upfront fee is not)."""
    return pc.and_(
        pc.and_(
            pc.equal(lines.column("charge_category"), "Purchase"),
            pc.equal(pc.utf8_lower(pc.fill_null(lines.column("charge_frequency"), "")), "recurring"),
        ),
        pc.not_equal(pc.fill_null(lines.column("commitment_discount_id"), ""), ""),
    )


def _kpi_amounts(p: _Priced) -> dict[str, pa.ChunkedArray]:
    """The sums the KPIs of a pool (flexible or scoped) are computed from: usage at on-demand rates, the part
    commitments covered, what commitments cost (used or not; purchases of commitments, upfront fees, are not
    usage and count in neither), their unused part, and what the rest cost on demand."""
    committed = pc.or_(pc.and_(p.usage_line, p.used), p.unused)
    return {
        "on_demand_equivalent": p.on_demand_equivalent,
        "covered": p.covered,
        "commitment_cost": pc.if_else(committed, p.effective, p.zero),
        "unused_commitment_cost": pc.if_else(p.unused, p.effective, p.zero),
        "on_demand_cost": pc.if_else(p.plain, p.effective, p.zero),
    }


@dataclass(frozen=True)
class _Priced:
    """Each line's amounts in one decimal type, and its commitment status: see the module docstring."""

    zero: pa.Scalar
    effective: pa.ChunkedArray
    billed: pa.ChunkedArray
    covered: pa.ChunkedArray
    """The on-demand-equivalent cost of usage a commitment covered (zero elsewhere)."""
    on_demand_equivalent: pa.ChunkedArray
    usage_line: pa.ChunkedArray
    used: pa.ChunkedArray
    unused: pa.ChunkedArray
    plain: pa.ChunkedArray
    """Usage no commitment touched."""


def _priced(lines: pa.Table) -> _Priced:
    money, cols = _common(lines, ("effective_cost", "contracted_cost", "list_cost", "billed_cost"))
    zero = pa.scalar(0, money)
    status = pc.utf8_lower(pc.fill_null(lines.column("commitment_discount_status"), ""))
    used, unused = pc.equal(status, "used"), pc.equal(status, "unused")
    usage_line = pc.equal(lines.column("charge_category"), "Usage")
    effective = pc.fill_null(cols["effective_cost"], zero)
    listed = pc.if_else(pc.greater(pc.fill_null(cols["list_cost"], zero), zero), cols["list_cost"], effective)
    contracted = pc.fill_null(cols["contracted_cost"], zero)
    undiscounted = pc.if_else(pc.greater(contracted, zero), contracted, listed)
    plain = pc.and_(usage_line, pc.invert(pc.or_(used, unused)))
    covered = pc.if_else(pc.and_(usage_line, used), undiscounted, zero)
    return _Priced(
        zero=zero, effective=effective, billed=cols["billed_cost"], covered=covered,
        on_demand_equivalent=pc.if_else(plain, effective, covered), usage_line=usage_line, used=used,
        unused=unused, plain=plain,
    )  # fmt: skip


def _buckets(lines: pa.Table) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    start = lines.column("charge_period_start")
    hours = pc.divide(pc.cast(pc.subtract(lines.column("charge_period_end"), start), pa.int64()), 3_600_000_000)
    daily = pc.greater(hours, 1)
    bucket = pc.if_else(daily, pc.floor_temporal(start, unit="day"), pc.floor_temporal(start, unit="hour"))
    return bucket, pc.if_else(daily, pa.scalar(24, pa.int32()), pa.scalar(1, pa.int32()))


def _families(lines: pa.Table) -> pa.Array:
    """The instance family of each line (None where no instance type is named)."""
    return pa.array(
        [family_of(p or "", s, r) for p, s, r in zip(lines.column("provider_name").to_pylist(),
                                                     lines.column("sku_id").to_pylist(),
                                                     lines.column("resource_id").to_pylist(), strict=True)],
        pa.string(),
    )  # fmt: skip


def family_usage(frame: pa.Table) -> pa.Table:
    """Exact sums per billing account, region, instance family, bucket and team of the compute usage lines that
    name an instance type (the usage scoped commitments can cover)."""
    eligible = pc.and_(
        pc.equal(pc.fill_null(frame.column("service_category"), ""), "Compute"),
        pc.equal(frame.column("charge_category"), "Usage"),
    )
    lines = frame.filter(eligible)
    empty = pa.table({k: [] for k in (*FAMILY_KEYS, *FAMILY_AMOUNTS)})
    if lines.num_rows == 0:
        return empty
    families = _families(lines)
    named = pc.is_valid(families)
    lines, families = lines.filter(named), families.filter(named)
    if lines.num_rows == 0:
        return empty
    p = _priced(lines)
    bucket, grain = _buckets(lines)
    table = pa.table(
        {
            "billing_account_id": lines.column("billing_account_id"),
            "provider_name": lines.column("provider_name"),
            "region_id": pc.fill_null(lines.column("region_id"), ""),
            "family": families,
            "bucket": bucket,
            "grain_hours": grain,
            "billing_currency": lines.column("billing_currency"),
            "team": _teams(lines),
            **_kpi_amounts(p),
        }
    )
    return _sum(table, FAMILY_KEYS, FAMILY_AMOUNTS)


def commitment_usage(frame: pa.Table) -> pa.Table:
    """Exact sums per commitment (CommitmentDiscountId), region, family and bucket of the compute lines that name
    one: the usage it covered at on-demand rates, what that usage cost (amortized), its unused cost, and its
    recurring purchase fees."""
    ids = frame.column("commitment_discount_id")
    compute = pc.equal(pc.fill_null(frame.column("service_category"), ""), "Compute")
    lines = frame.filter(pc.and_(compute, pc.not_equal(pc.fill_null(ids, ""), "")))
    if lines.num_rows == 0:
        return pa.table({k: [] for k in (*COMMITMENT_KEYS, *COMMITMENT_AMOUNTS)})
    p = _priced(lines)
    purchase = _recurring_fee(lines)
    bucket, grain = _buckets(lines)
    table = pa.table(
        {
            "billing_account_id": lines.column("billing_account_id"),
            "provider_name": lines.column("provider_name"),
            "commitment_id": lines.column("commitment_discount_id"),
            "category": pc.fill_null(lines.column("commitment_discount_category"), ""),
            "region_id": pc.fill_null(lines.column("region_id"), ""),
            "family": pc.fill_null(_families(lines), ""),
            "bucket": bucket,
            "grain_hours": grain,
            "billing_currency": lines.column("billing_currency"),
            "covered": p.covered,
            "used_cost": pc.if_else(pc.and_(p.usage_line, p.used), p.effective, p.zero),
            "unused_cost": pc.if_else(p.unused, p.effective, p.zero),
            "purchase_cost": pc.if_else(purchase, pc.fill_null(p.billed, p.zero), p.zero),
        }
    )
    return _sum(table, COMMITMENT_KEYS, COMMITMENT_AMOUNTS)


def _instance_types(frame: pa.Table) -> pa.Array:
    """The instance type each compute line names ("" where none), parsed once per distinct provider, SKU and
    resource rather than once per line."""
    compute = pc.equal(pc.fill_null(frame.column("service_category"), ""), "Compute")
    names = pc.binary_join_element_wise(
        *(pc.fill_null(frame.column(c), "") for c in ("provider_name", "sku_id", "resource_id")), "\x1f"
    )
    encoded = pc.if_else(compute, names, pa.scalar(None, pa.string())).combine_chunks().dictionary_encode()
    types = [instance_type_of(*key.split("\x1f")) or "" for key in encoded.dictionary.to_pylist()]
    return pc.take(pa.array([*types, ""], pa.string()), encoded.indices.fill_null(len(types)))


def resource_days(frame: pa.Table) -> pa.Table:
    """Exact EffectiveCost and BilledCost per resource (or per service and region for lines without one), team
    and charge day. A commitment's own lines (its purchase and recurring fees, its unused part, any line whose
    resource is the commitment itself) are not a resource: the idle, rightsizing and anomaly rules never see them."""
    frame = frame.filter(pc.invert(commitment_own_lines(frame)))
    text = {
        n: pc.fill_null(frame.column(n), "")
        for n in RESOURCE_KEYS
        if n not in ("team", "snapshot", "day", "instance_type")
    }
    names = pc.utf8_lower(pc.binary_join_element_wise(text["resource_id"], pc.fill_null(frame.column("sku_id"), ""),
                                                      text["service_name"], " "))  # fmt: skip
    _, amounts = _common(frame, RESOURCE_AMOUNTS)
    table = pa.table(
        {
            **text,
            "team": _teams(frame),
            "snapshot": pc.match_substring(names, "snapshot"),
            "day": pc.cast(pc.floor_temporal(frame.column("charge_period_start"), unit="day"), pa.date32()),
            "instance_type": _instance_types(frame),
            **amounts,
        }
    ).select([*RESOURCE_KEYS, *RESOURCE_AMOUNTS])
    return _sum(table, RESOURCE_KEYS, RESOURCE_AMOUNTS)


def commitment_own_lines(frame: pa.Table) -> pa.ChunkedArray:
    """True for the lines that are a commitment's own charges rather than a resource's usage."""
    category = pc.utf8_lower(pc.fill_null(frame.column("charge_category"), ""))
    status = pc.utf8_lower(pc.fill_null(frame.column("commitment_discount_status"), ""))
    resource = pc.fill_null(frame.column("resource_id"), "")
    commitment = pc.fill_null(frame.column("commitment_discount_id"), "")
    is_commitment = pc.and_(pc.not_equal(commitment, ""), pc.equal(resource, commitment))
    return pc.or_(pc.or_(pc.equal(category, "purchase"), pc.equal(status, "unused")), is_commitment)


def _sum(table: pa.Table, keys: tuple[str, ...], amounts: tuple[str, ...]) -> pa.Table:
    # sums in 76 digits: a batch of a million lines of 38-digit decimals cannot overflow them
    wide = {a: table.column(a).cast(pa.decimal256(76, table.schema.field(a).type.scale)) for a in amounts}
    for name, column in wide.items():
        table = table.set_column(table.schema.get_field_index(name), name, column)
    grouped = table.group_by(list(keys), use_threads=False).aggregate([(a, "sum") for a in amounts])
    return grouped.rename_columns([*keys, *amounts])


# --- series for the planner -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """An hourly series starting at `start` (an hour boundary, UTC)."""

    start: datetime
    values: np.ndarray

    @property
    def end(self) -> datetime:
        """The first hour after the series."""
        return self.start + timedelta(hours=int(self.values.size))


def hourly(buckets: list[tuple[datetime, int, float]]) -> Series | None:
    """An hourly series from (bucket start, hours it spans, amount) rows; a day's amount is spread evenly over its
    hours, hours with no row are zero."""
    if not buckets:
        return None
    start = min(b for b, _, _ in buckets)
    end = max(b + timedelta(hours=h) for b, h, _ in buckets)
    values = np.zeros(int((end - start).total_seconds() // 3600))
    for bucket, hours, amount in buckets:
        i = int((bucket - start).total_seconds() // 3600)
        values[i : i + hours] += amount / hours
    return Series(start, values)
