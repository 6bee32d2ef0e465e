"""Synthetic provider-native billing files for tests: AWS CUR 2.0 (Data Exports) and the GCP BigQuery standard
billing export, built from the providers' published column lists (no real rows of either are public).

Seeded and deterministic. Amounts are Decimals with at most 12 significant digits, so a float64 container
(Parquet, JSON numbers) holds them exactly as their shortest repr. Containers: CSV with nested values as JSON
text, gzip'd CSV, Parquet with real nested types, and (GCP only) newline-delimited JSON.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import random
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CONTAINERS = ("csv", "csv.gz", "parquet")
GCP_CONTAINERS = (*CONTAINERS, "jsonl")
UTC = dt.UTC

# AWS Data Exports, CUR 2.0 table: the published column list (maps: product, resource_tags, discount,
# cost_category); split cost allocation columns left out.
CUR2_MONEY = (
    "line_item_unblended_cost", "line_item_net_unblended_cost", "line_item_blended_cost",
    "pricing_public_on_demand_cost", "reservation_effective_cost",
    "reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_recurring_fee",
    "reservation_amortized_upfront_cost_for_usage", "reservation_recurring_fee_for_usage",
    "savings_plan_savings_plan_effective_cost", "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment", "savings_plan_amortized_upfront_commitment_for_billing_period",
    "savings_plan_recurring_commitment_for_billing_period", "discount_total_discount",
)  # fmt: skip
CUR2_NUMBERS = (
    "line_item_usage_amount", "line_item_unblended_rate", "line_item_blended_rate", "line_item_net_unblended_rate",
    "pricing_public_on_demand_rate", "line_item_normalization_factor", "line_item_normalized_usage_amount",
)  # fmt: skip
CUR2_TIMES = (
    "bill_billing_period_start_date", "bill_billing_period_end_date",
    "line_item_usage_start_date", "line_item_usage_end_date",
)  # fmt: skip
CUR2_MAPS = ("product", "resource_tags", "discount", "cost_category")
CUR2_COLUMNS = (
    "identity_line_item_id", "identity_time_interval", "bill_invoice_id", "bill_invoicing_entity",
    "bill_billing_entity", "bill_bill_type", "bill_payer_account_id", "bill_payer_account_name",
    "bill_billing_period_start_date", "bill_billing_period_end_date", "line_item_usage_account_id",
    "line_item_usage_account_name", "line_item_line_item_type", "line_item_usage_start_date",
    "line_item_usage_end_date", "line_item_product_code", "line_item_usage_type", "line_item_operation",
    "line_item_availability_zone", "line_item_resource_id", "line_item_usage_amount",
    "line_item_normalization_factor", "line_item_normalized_usage_amount", "line_item_currency_code",
    "line_item_unblended_rate", "line_item_unblended_cost", "line_item_net_unblended_rate",
    "line_item_net_unblended_cost", "line_item_blended_rate", "line_item_blended_cost",
    "line_item_line_item_description", "line_item_tax_type", "line_item_legal_entity", "product",
    "product_product_family", "product_region_code", "product_servicecode", "product_sku", "product_location",
    "product_instance_type", "product_usagetype", "product_operation", "pricing_rate_code", "pricing_rate_id",
    "pricing_currency", "pricing_public_on_demand_cost", "pricing_public_on_demand_rate", "pricing_term",
    "pricing_unit", "pricing_purchase_option", "reservation_reservation_a_r_n", "reservation_effective_cost",
    "reservation_amortized_upfront_cost_for_usage", "reservation_recurring_fee_for_usage",
    "reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_recurring_fee",
    "savings_plan_savings_plan_a_r_n", "savings_plan_savings_plan_effective_cost",
    "savings_plan_total_commitment_to_date", "savings_plan_used_commitment",
    "savings_plan_amortized_upfront_commitment_for_billing_period",
    "savings_plan_recurring_commitment_for_billing_period", "discount", "discount_total_discount",
    "resource_tags", "cost_category",
)  # fmt: skip
_CUR2_SERVICES = (
    ("AmazonEC2", "Amazon Elastic Compute Cloud", "BoxUsage:m5.large", "Hrs"),
    ("AmazonS3", "Amazon Simple Storage Service", "TimedStorage-ByteHrs", "GB-Mo"),
    ("AmazonRDS", "Amazon Relational Database Service", "InstanceUsage:db.r5.large", "Hrs"),
    ("AWSLambda", "AWS Lambda", "Request", "Requests"),
    ("AmazonCloudFront", "Amazon CloudFront", "DataTransfer-Out-Bytes", "GB"),
)
_CUR2_KINDS = (
    ("Usage", 50), ("DiscountedUsage", 10), ("SavingsPlanCoveredUsage", 10), ("SavingsPlanNegation", 5),
    ("RIFee", 4), ("SavingsPlanRecurringFee", 4), ("Tax", 6), ("Credit", 3), ("Fee", 3), ("EdpDiscount", 5),
)  # fmt: skip
_PAYERS = (("111111111111", "USD"), ("222222222222", "EUR"), ("333333333333", "USD"))
_TEAMS = ("payments", "search", "platform", " data ", "ml")


def _amount(rng: random.Random, scale: int = 8, top: int = 10**4) -> Decimal:
    """An exact amount with up to `scale` decimals and at most 12 significant digits."""
    return Decimal(rng.randrange(top * 10**scale)) / Decimal(10**scale)


def _iso_ms(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def cur2_rows(*, rows: int = 300, seed: int = 2026) -> list[dict[str, object]]:
    """CUR 2.0 line items as Python values: Decimals for money, aware datetimes, dicts for maps, None for nulls."""
    rng = random.Random(seed)
    kinds = [k for k, weight in _CUR2_KINDS for _ in range(weight)]
    out = []
    for i in range(rows):
        payer, currency = _PAYERS[i % len(_PAYERS)]
        account = f"{int(payer) + 1 + rng.randrange(3):012d}"
        month = 5 + rng.randrange(2)
        period_start = dt.datetime(2026, month, 1, tzinfo=UTC)
        period_end = dt.datetime(2026, month + 1, 1, tzinfo=UTC)
        start = period_start + dt.timedelta(hours=rng.randrange(24 * 28))
        end = start + dt.timedelta(hours=1)
        code, name, usage_type, unit = rng.choice(_CUR2_SERVICES)
        kind = rng.choice(kinds)
        row: dict[str, object] = dict.fromkeys(CUR2_COLUMNS)
        usage = _amount(rng, 4, 1000)
        unblended = _amount(rng)
        rate = _amount(rng, 6, 10)
        on_demand = unblended + _amount(rng, 8, 100)
        ri_arn = f"arn:aws:ec2:us-east-1:{payer}:reserved-instances/ri-{rng.randrange(10**8):08x}"
        sp_arn = f"arn:aws:savingsplans::{payer}:savingsplan/sp-{rng.randrange(10**8):08x}"
        if kind == "DiscountedUsage":
            row |= {"reservation_reservation_a_r_n": ri_arn, "reservation_effective_cost": _amount(rng),
                    "reservation_amortized_upfront_cost_for_usage": _amount(rng, 8, 10),
                    "reservation_recurring_fee_for_usage": _amount(rng, 8, 10)}  # fmt: skip
            unblended = Decimal(0)
        elif kind == "SavingsPlanCoveredUsage":
            row |= {"savings_plan_savings_plan_a_r_n": sp_arn, "savings_plan_savings_plan_effective_cost": _amount(rng)}
        elif kind == "SavingsPlanNegation":
            row["savings_plan_savings_plan_a_r_n"] = sp_arn
            unblended = -unblended
        elif kind == "RIFee":
            row |= {"reservation_reservation_a_r_n": ri_arn,
                    "reservation_unused_amortized_upfront_fee_for_billing_period": _amount(rng, 8, 100),
                    "reservation_unused_recurring_fee": _amount(rng, 8, 100)}  # fmt: skip
        elif kind == "SavingsPlanRecurringFee":
            total = _amount(rng)
            row |= {"savings_plan_savings_plan_a_r_n": sp_arn, "savings_plan_total_commitment_to_date": total,
                    "savings_plan_used_commitment": total - _amount(rng, 8, 1) if total > 1 else total,
                    "savings_plan_recurring_commitment_for_billing_period": total}  # fmt: skip
        elif kind == "Fee":
            row["reservation_reservation_a_r_n"] = ri_arn if rng.random() < 0.5 else None
        elif kind in ("Credit", "EdpDiscount"):
            unblended = -unblended
        tags = {}
        if rng.random() < 0.7:
            tags["user_team"] = rng.choice(_TEAMS)
        if rng.random() < 0.4:
            tags["user_cost_center"] = f"cc-{rng.randrange(100, 110)}"
        if rng.random() < 0.2:
            tags["aws_created_by"] = f"IAMUser:{rng.randrange(10**6)}"
        row |= {
            "identity_line_item_id": f"li-{i:06d}-{rng.randrange(16**8):08x}",
            "identity_time_interval": f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}",
            "bill_invoice_id": f"{month}{rng.randrange(10**8):08d}",
            "bill_invoicing_entity": "Amazon Web Services, Inc."
            if currency == "USD"
            else "Amazon Web Services EMEA SARL",
            "bill_billing_entity": "AWS",
            "bill_bill_type": "Anniversary",
            "bill_payer_account_id": payer,
            "bill_payer_account_name": f"Payer {payer[:3]}",
            "bill_billing_period_start_date": period_start,
            "bill_billing_period_end_date": period_end,
            "line_item_usage_account_id": account,
            "line_item_usage_account_name": f"acct-{account[-4:]}",
            "line_item_line_item_type": kind,
            "line_item_usage_start_date": start,
            "line_item_usage_end_date": end,
            "line_item_product_code": code,
            "line_item_usage_type": usage_type,
            "line_item_operation": "RunInstances" if code == "AmazonEC2" else "Standard",
            "line_item_availability_zone": "us-east-1a" if code in ("AmazonEC2", "AmazonRDS") else None,
            "line_item_resource_id": f"arn:aws:{code.lower()}:us-east-1:{account}:resource/r-{i:06d}",
            "line_item_usage_amount": usage,
            "line_item_currency_code": currency,
            "line_item_unblended_rate": rate,
            "line_item_unblended_cost": unblended,
            "line_item_net_unblended_rate": rate,
            "line_item_net_unblended_cost": unblended - _amount(rng, 8, 1),
            "line_item_blended_rate": rate,
            "line_item_blended_cost": unblended,
            "line_item_line_item_description": f"{kind} of {name}",
            "line_item_legal_entity": "Amazon Web Services, Inc.",
            "line_item_tax_type": "VAT" if kind == "Tax" else None,
            "product": {"product_name": name, "region": "us-east-1", "servicename": name},
            "product_product_family": "Compute Instance" if code == "AmazonEC2" else "Storage",
            "product_region_code": "us-east-1",
            "product_servicecode": code,
            "product_sku": f"SKU{rng.randrange(10**6):06d}",
            "product_location": "US East (N. Virginia)",
            "product_usagetype": usage_type,
            "pricing_rate_code": f"RC{rng.randrange(10**6)}",
            "pricing_currency": "USD",
            "pricing_public_on_demand_cost": on_demand,
            "pricing_public_on_demand_rate": rate,
            "pricing_term": "Reserved" if kind == "DiscountedUsage" else "OnDemand",
            "pricing_unit": unit,
            "resource_tags": tags,
            "discount": {"edp_discount": str(unblended)} if kind == "EdpDiscount" else {},
            "cost_category": {"business_unit": rng.choice(("core", "growth"))},
        }
        out.append(row)
    return out


def _cur2_csv_cell(column: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return _iso_ms(value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def write_cur2(path: Path, *, container: str, rows: int = 300, seed: int = 2026) -> Path:
    """A CUR 2.0 export in `container` (csv, csv.gz, parquet) at path."""
    data = cur2_rows(rows=rows, seed=seed)
    if container == "parquet":
        fields = []
        for c in CUR2_COLUMNS:
            if c in CUR2_MAPS:
                kind = pa.map_(pa.string(), pa.string())
            elif c in CUR2_MONEY or c in CUR2_NUMBERS:
                kind = pa.float64()  # Data Exports write doubles; 12 significant digits survive exactly
            elif c in CUR2_TIMES:
                kind = pa.timestamp("ms", tz="UTC")
            else:
                kind = pa.string()
            fields.append(pa.field(c, kind))
        columns = {}
        for field in fields:
            values = [r[field.name] for r in data]
            if pa.types.is_floating(field.type):
                values = [None if v is None else float(v) for v in values]
            elif pa.types.is_map(field.type):
                values = [None if v is None else list(v.items()) for v in values]
            columns[field.name] = pa.array(values, field.type)
        pq.write_table(pa.table(columns, schema=pa.schema(fields)), path)
        return path
    _write_csv(path, CUR2_COLUMNS, ([_cur2_csv_cell(c, r[c]) for c in CUR2_COLUMNS] for r in data), container)
    return path


def _write_csv(path: Path, header, rows, container: str) -> None:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(header)
    out.writerows(rows)
    raw = buffer.getvalue().encode("utf-8")
    path.write_bytes(gzip.compress(raw, mtime=0) if container == "csv.gz" else raw)


# GCP Cloud Billing export to BigQuery, standard usage cost table (gcp_billing_export_v1_*).
GCP_COLUMNS = (
    "billing_account_id", "service", "sku", "usage_start_time", "usage_end_time", "project", "labels",
    "system_labels", "location", "export_time", "cost", "currency", "currency_conversion_rate", "usage",
    "credits", "invoice", "cost_type", "adjustment_info", "cost_at_list", "transaction_type", "seller_name",
)  # fmt: skip
_GCP_ACCOUNTS = (("01A2B3-C4D5E6-F7A8B9", "USD"), ("0A1B2C-3D4E5F-6A7B8C", "EUR"), ("0F0E0D-0C0B0A-090807", "USD"))
_GCP_SERVICES = (
    ("6F81-5844-456A", "Compute Engine", "N2 Instance Core running in Americas", "seconds", "hour"),
    ("95FF-2EF5-5EA1", "Cloud Storage", "Standard Storage US Multi-region", "byte-seconds", "gibibyte month"),
    ("24E6-581D-38E5", "BigQuery", "Analysis", "bytes", "tebibyte"),
    ("9662-B51E-5089", "Cloud SQL", "Cloud SQL for PostgreSQL: Zonal - vCPU", "seconds", "hour"),
)
_CREDIT_TYPES = ("SUSTAINED_USAGE_DISCOUNT", "COMMITTED_USAGE_DISCOUNT", "PROMOTION", "FREE_TIER", "DISCOUNT")


def gcp_rows(*, rows: int = 300, seed: int = 2027) -> list[dict[str, object]]:
    """Billing export rows as Python values: Decimals for money, aware datetimes, dicts/lists for structs."""
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        account, currency = _GCP_ACCOUNTS[i % len(_GCP_ACCOUNTS)]
        month = 5 + rng.randrange(2)
        start = dt.datetime(2026, month, 1, 7, tzinfo=UTC) + dt.timedelta(hours=rng.randrange(24 * 28))
        service_id, service, sku, unit, pricing_unit = rng.choice(_GCP_SERVICES)
        project = f"proj-{rng.choice(('web', 'data', 'ml'))}-{rng.randrange(100, 103)}"
        cost_type = rng.choices(("regular", "tax", "adjustment"), weights=(90, 6, 4))[0]
        cost = _amount(rng, 6, 5000)
        credits = [
            {"name": f"{t.title()} credit", "amount": -_amount(rng, 6, 10), "full_name": None,
             "id": f"credit-{rng.randrange(10**6)}", "type": t}
            for t in rng.sample(_CREDIT_TYPES, rng.choice((0, 0, 1, 2)))
        ] if cost_type == "regular" else []  # fmt: skip
        amount = _amount(rng, 3, 10**5)
        labels = [{"key": "team", "value": rng.choice(_TEAMS)}] if rng.random() < 0.6 else []
        if rng.random() < 0.3:
            labels.append({"key": "env", "value": rng.choice(("prod", "dev"))})
        region = rng.choice(("us-central1", "europe-west1", None))
        out.append(
            {
                "billing_account_id": account,
                "service": {"id": service_id, "description": service},
                "sku": {
                    "id": f"{rng.randrange(16**4):04X}-{rng.randrange(16**4):04X}-{rng.randrange(16**4):04X}",
                    "description": sku,
                },  # fmt: skip
                "usage_start_time": start,
                "usage_end_time": start + dt.timedelta(hours=1),
                "project": {
                    "id": project,
                    "number": str(10**11 + rng.randrange(10**6)),
                    "name": project.upper(),
                    "labels": [{"key": "cost-center", "value": f"cc-{rng.randrange(3)}"}],
                    "ancestry_numbers": "/123456/",
                },  # fmt: skip
                "labels": labels,
                "system_labels": [{"key": "compute.googleapis.com/machine_spec", "value": "n2-standard-4"}],
                "location": {
                    "location": region or "us",
                    "country": "US",
                    "region": region,
                    "zone": f"{region}-a" if region else None,
                },  # fmt: skip
                "export_time": start + dt.timedelta(hours=5),
                "cost": cost,
                "currency": currency,
                "currency_conversion_rate": Decimal("1") if currency == "USD" else Decimal("0.92"),
                "usage": {
                    "amount": amount,
                    "unit": unit,
                    "amount_in_pricing_units": amount / 1000,
                    "pricing_unit": pricing_unit,
                },  # fmt: skip
                "credits": credits,
                "invoice": {"month": f"2026{month:02d}"},
                "cost_type": cost_type,
                "adjustment_info": None,
                "cost_at_list": cost + _amount(rng, 6, 100),
                "transaction_type": "GOOGLE",
                "seller_name": None,
            }
        )
    return out


def _jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)  # at most 12 significant digits: json.dumps writes the same digits back
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")  # BigQuery's TIMESTAMP text
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


_KV = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
GCP_SCHEMA = pa.schema(
    [
        ("billing_account_id", pa.string()),
        ("service", pa.struct([("id", pa.string()), ("description", pa.string())])),
        ("sku", pa.struct([("id", pa.string()), ("description", pa.string())])),
        ("usage_start_time", pa.timestamp("us", tz="UTC")),
        ("usage_end_time", pa.timestamp("us", tz="UTC")),
        (
            "project",
            pa.struct(
                [
                    ("id", pa.string()),
                    ("number", pa.string()),
                    ("name", pa.string()),
                    ("labels", _KV),
                    ("ancestry_numbers", pa.string()),
                ]
            ),
        ),  # fmt: skip
        ("labels", _KV),
        ("system_labels", _KV),
        (
            "location",
            pa.struct(
                [("location", pa.string()), ("country", pa.string()), ("region", pa.string()), ("zone", pa.string())]
            ),
        ),  # fmt: skip
        ("export_time", pa.timestamp("us", tz="UTC")),
        ("cost", pa.float64()),
        ("currency", pa.string()),
        ("currency_conversion_rate", pa.float64()),
        (
            "usage",
            pa.struct(
                [
                    ("amount", pa.float64()),
                    ("unit", pa.string()),
                    ("amount_in_pricing_units", pa.float64()),
                    ("pricing_unit", pa.string()),
                ]
            ),
        ),  # fmt: skip
        (
            "credits",
            pa.list_(
                pa.struct(
                    [
                        ("name", pa.string()),
                        ("amount", pa.float64()),
                        ("full_name", pa.string()),
                        ("id", pa.string()),
                        ("type", pa.string()),
                    ]
                )
            ),
        ),  # fmt: skip
        ("invoice", pa.struct([("month", pa.string())])),
        ("cost_type", pa.string()),
        (
            "adjustment_info",
            pa.struct(
                [("id", pa.string()), ("description", pa.string()), ("mode", pa.string()), ("type", pa.string())]
            ),
        ),  # fmt: skip
        ("cost_at_list", pa.float64()),
        ("transaction_type", pa.string()),
        ("seller_name", pa.string()),
    ]
)


def _floats(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    return value


def write_gcp(path: Path, *, container: str, rows: int = 300, seed: int = 2027) -> Path:
    """A billing export in `container` (csv, csv.gz, parquet, jsonl) at path."""
    data = gcp_rows(rows=rows, seed=seed)
    if container == "parquet":
        table = pa.Table.from_pylist([{c: _floats(r[c]) for c in GCP_COLUMNS} for r in data], schema=GCP_SCHEMA)
        pq.write_table(table, path)
    elif container == "jsonl":
        lines = (json.dumps({k: v for k, v in _jsonable(r).items()}) + "\n" for r in data)
        path.write_text("".join(lines), encoding="utf-8")
    else:

        def cell(value: object) -> str:
            if value is None:
                return ""
            if isinstance(value, dict | list):
                return json.dumps(_jsonable(value))
            if isinstance(value, dt.datetime):
                return value.strftime("%Y-%m-%d %H:%M:%S UTC")
            return str(value)

        _write_csv(path, GCP_COLUMNS, ([cell(r[c]) for c in GCP_COLUMNS] for r in data), container)
    return path
