"""The planner's risk controls are the operator's to set: FINOPS_COVERAGE_TARGET and FINOPS_RISK_MARGIN."""

from __future__ import annotations

import pydantic
import pytest

from finops_recommend.app import RecommendSettings


@pytest.fixture(autouse=True)
def endpoints(monkeypatch):
    """Settings need endpoints; nothing here connects to them."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")


def test_the_coverage_target_and_risk_margin_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FINOPS_COVERAGE_TARGET", "0.8")
    monkeypatch.setenv("FINOPS_RISK_MARGIN", "0.02")

    settings = RecommendSettings()

    assert (settings.coverage_target, settings.risk_margin) == (0.8, 0.02)


def test_a_coverage_target_above_one_is_refused_naming_the_setting(monkeypatch):
    monkeypatch.setenv("FINOPS_COVERAGE_TARGET", "1.5")

    with pytest.raises(pydantic.ValidationError, match="coverage_target"):
        RecommendSettings()


def test_payment_options_are_checked_by_name(monkeypatch):
    monkeypatch.setenv("FINOPS_PAYMENT_OPTIONS", "partial_upfront, all_upfront")
    assert RecommendSettings().payment_options == "partial_upfront,all_upfront"

    monkeypatch.setenv("FINOPS_PAYMENT_OPTIONS", "half_upfront")
    with pytest.raises(pydantic.ValidationError, match="unknown payment option half_upfront"):
        RecommendSettings()
