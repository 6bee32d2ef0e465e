"""The usage model on a real-shaped bill: one file carries several billing accounts and several periods, as an
organisation's CUR or Azure export does. Each row must count once, under the current version of its own account
and period, and a restatement of one account's period must replace that period only, leaving the file's other
accounts and periods as they were.

The expected figures are worked by hand from the lines below (a cost of (2 + hour/10) x the account's multiplier
per hour), not read back from the platform's code."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from finops_contracts.cloudevents import Envelope, now
from finops_contracts.events import CostBatchIngested, CostLine, CostPeriodCompleted, CurrencyTotal, Event
from finops_contracts.recommendations import KpiMeasured
from finops_contracts.topics import COST, RECOMMENDATION
from finops_recommend import repository
from finops_recommend.app import RecommendSettings, create_app
from tests.support.flow import scalar
from tests.support.kafka import produce, read_topic
from tests.support.platform import ADMIN_TOKEN
from tests.support.services import free_port, serve_in_process, wait_until

ACCOUNTS = {"100000000001": 1, "100000000002": 2, "100000000003": 3}
PERIODS = (datetime(2024, 9, 1, tzinfo=UTC), datetime(2024, 10, 1, tzinfo=UTC))
DAYS = 2


def hourly_cost(hour: datetime, multiplier: int) -> Decimal:
    return (Decimal("2.00") + Decimal(hour.hour) / 10) * multiplier


def lines_of(account: str, start: datetime, multiplier: int) -> list[CostLine]:
    """`DAYS` days of hourly EC2 in one account and period."""
    end = (start + timedelta(days=32)).replace(day=1)
    out = []
    for h in range(24 * DAYS):
        hour = start + timedelta(hours=h)
        cost = hourly_cost(hour, multiplier)
        out.append(
            CostLine(
                billing_account_id=account,
                billing_period_start=start,
                billing_period_end=end,
                charge_category="Usage",
                billing_currency="USD",
                provider_name="AWS",
                charge_period_start=hour,
                charge_period_end=hour + timedelta(hours=1),
                billed_cost=cost,
                effective_cost=cost,
                service_name="Amazon EC2",
                service_category="Compute",
                region_id="us-east-1",
                sub_account_id=f"{account}-app",
                resource_id=f"i-{account}",
                sku_id="BoxUsage:m5.xlarge",
                pricing_category="Standard",
                tags={"team": "payments"},
            )  # fmt: skip
        )
    return out


def file_records(ingest_id: uuid.UUID, parts: dict[tuple[str, datetime], list[CostLine]], version: int) -> list:
    """One file's events as ingest publishes them: a batch per (account, period), then each one's completion."""
    events: list[Event] = []
    for seq, ((account, start), lines) in enumerate(parts.items()):
        events.append(
            CostBatchIngested.of_lines(
                lines, ingest_id=ingest_id, batch_seq=seq, billing_account_id=account, billing_period_start=start
            )
        )
    for (account, start), lines in parts.items():
        total = sum((line.effective_cost for line in lines), Decimal(0))
        events.append(
            CostPeriodCompleted(
                ingest_id=ingest_id,
                provider_name="AWS",
                billing_account_id=account,
                billing_period_start=start,
                version=version,
                batch_count=1,
                line_count=len(lines),
                totals=(CurrencyTotal(currency="USD", billed_cost=total, effective_cost=total, line_count=len(lines)),),
            )  # fmt: skip
        )
    records = []
    for event in events:
        envelope = Envelope(
            id=uuid.uuid4(), type=event.TYPE, source="/test/ingest", time=now(), subject=event.subject(),
            content_type=event.CONTENT_TYPE,
        )  # fmt: skip
        records.append((event.key().encode(), event.encode(), envelope.to_headers()))
    return records


def expected_month(multiplier: int) -> Decimal:
    return sum((Decimal("2.00") + Decimal(h) / 10) * multiplier for h in range(24)) * DAYS


async def settled(database_url: str, processed: int) -> bool:
    return (
        await scalar(database_url, "SELECT count(*) FROM recommend.processed_event") >= processed
        and await scalar(database_url, "SELECT count(*) FROM recommend.analysis_mark") == 0
        and await scalar(database_url, "SELECT count(*) FROM recommend.outbox") == 0
    )


async def pool_usage_by_month(database_url: str) -> dict[tuple[str, datetime], tuple[Decimal, Decimal]]:
    """Per (flexible pool, month): the usage the planner reads (its sum and its largest hour)."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "recommend"})
    try:
        buckets = await repository.pool_buckets(conn)
    finally:
        await conn.close()
    out: dict[tuple[str, datetime], tuple[Decimal, Decimal]] = {}
    for (pool, _currency), rows in buckets.items():
        if not pool.startswith("aws_compute_savings_plan/"):
            continue
        for bucket, _hours, usage in rows:
            key = (pool, bucket.replace(day=1, hour=0))
            total, peak = out.get(key, (Decimal(0), Decimal(0)))
            out[key] = (total + usage, max(peak, usage))
    return out


async def test_one_file_of_many_accounts_and_periods_counts_each_row_once(service_env, database_url):
    # Given one file with three accounts and two periods each
    ns = service_env["FINOPS_KAFKA_NAMESPACE"]
    bootstrap = service_env["KAFKA_BOOTSTRAP_SERVERS"]
    settings = RecommendSettings(
        database_url=database_url, kafka_bootstrap_servers=bootstrap, kafka_namespace=ns,
        relay_poll_interval_s=0.2, admin_token=ADMIN_TOKEN, analysis_quiet_s=0.5,
    )  # fmt: skip
    parts = {(a, p): lines_of(a, p, m) for a, m in ACCOUNTS.items() for p in PERIODS}
    first = file_records(uuid.uuid4(), parts, version=1)

    async with serve_in_process(create_app(settings), free_port()) as _url:
        # When recommend consumes it
        await produce(bootstrap, ns + COST.name, first)
        await wait_until(lambda: settled(database_url, len(first)), timeout=90, what="the file analysed")

        # Then each account's pool holds its own usage once per month, not once per (account, period) of the file
        usage = await pool_usage_by_month(database_url)
        assert set(usage) == {(f"aws_compute_savings_plan/{a}", p) for a in ACCOUNTS for p in PERIODS}
        for account, multiplier in ACCOUNTS.items():
            for period in PERIODS:
                total, peak = usage[(f"aws_compute_savings_plan/{account}", period)]
                assert total == expected_month(multiplier)
                assert peak == hourly_cost(period.replace(hour=23), multiplier)
        kpis = {
            (e.pool, e.month): e
            for e in (
                KpiMeasured.decode(r.value)
                for r in await read_topic(bootstrap, ns + RECOMMENDATION.name, at_least=6, timeout=30)
                if dict(r.headers).get("ce_type", b"").decode() == KpiMeasured.TYPE
            )
        }
        for account, multiplier in ACCOUNTS.items():
            for period in PERIODS:
                kpi = kpis[(f"aws_compute_savings_plan/{account}", period)]
                assert kpi.on_demand_equivalent.amount == expected_month(multiplier)

        # When another file restates the first account's September only (costs ten times higher)
        restated_account = "100000000001"
        restated = {(restated_account, PERIODS[0]): lines_of(restated_account, PERIODS[0], 10)}
        second = file_records(uuid.uuid4(), restated, version=2)
        await produce(bootstrap, ns + COST.name, second)
        await wait_until(
            lambda: settled(database_url, len(first) + len(second)), timeout=90, what="the restatement analysed"
        )

        # Then that period has the new figures, and every other account and period of the first file is intact
        after = await pool_usage_by_month(database_url)
        assert set(after) == set(usage)
        for key, (total, _peak) in after.items():
            pool, period = key
            if pool.endswith(restated_account) and period == PERIODS[0]:
                assert total == expected_month(10)
            else:
                assert total == usage[key][0]
