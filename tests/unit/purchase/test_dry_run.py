"""Which adapter buys an order, and whether for real: the sandbox buys by default (it spends no money); a cloud
adapter runs dry unless its cloud is named live AND the order's billing account is confirmed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from finops_purchase.app import PurchaseSettings
from finops_purchase.provider import Order, Refused

ORDER = Order(
    decision_id="d-1",
    provider_name="AWS",
    billing_account_id="111122223333",
    program="aws_compute_savings_plan",
    term_months=12,
    payment="no_upfront",
    start=datetime(2026, 12, 1, tzinfo=UTC),
    commitment_per_hour=Decimal("1"),
    currency="USD",
    covered_usage_per_hour=Decimal("2"),
)


def settings(**fields) -> PurchaseSettings:
    return PurchaseSettings(database_url="postgresql://unused/db", kafka_bootstrap_servers="unused:9092", **fields)


@pytest.fixture(autouse=True)
def _no_purchase_environment(monkeypatch):
    for name in ("FINOPS_PURCHASE_PROVIDER", "FINOPS_PURCHASE_LIVE", "FINOPS_PURCHASE_LIVE_ACCOUNTS"):
        monkeypatch.delenv(name, raising=False)


def test_the_default_is_the_sandbox_and_it_buys_for_real():
    chosen = settings().registry().choose(ORDER)

    assert (chosen.adapter, chosen.dry_run) == ("sandbox", False)


def test_cloud_adapters_run_dry_unless_live_and_confirmed_for_the_account():
    dry = settings(purchase_provider="cloud").registry()
    live = settings(purchase_provider="cloud", purchase_live="aws", purchase_live_accounts="111122223333").registry()

    assert dry.choose(ORDER).dry_run and dry.choose(ORDER).adapter == "aws"
    assert dry.choose(replace(ORDER, program="azure_reservation")).adapter == "azure"
    assert dry.choose(replace(ORDER, program="gcp_resource_cud")).adapter == "gcp"
    assert live.choose(ORDER).dry_run is False
    assert live.choose(replace(ORDER, billing_account_id="999999999999")).dry_run, "an account not confirmed"
    assert live.choose(replace(ORDER, program="azure_reservation")).dry_run, "a cloud not named live"
    with pytest.raises(Refused, match="programs start with aws_, azure_ or gcp_"):
        dry.choose(replace(ORDER, program="oci_universal_credits"))


def test_live_buying_without_the_second_confirmation_does_not_start():
    with pytest.raises(ValidationError, match="FINOPS_PURCHASE_LIVE_ACCOUNTS"):
        settings(purchase_provider="cloud", purchase_live="aws")
    with pytest.raises(ValidationError, match="use any of aws, azure, gcp"):
        settings(purchase_provider="cloud", purchase_live="oracle", purchase_live_accounts="1")
    with pytest.raises(ValidationError, match="FINOPS_PURCHASE_PROVIDER=cloud"):
        settings(purchase_live="aws", purchase_live_accounts="1")
