"""Channel payloads: Slack Block Kit, a Teams Adaptive Card, an email with text and HTML parts (escaped), and a
webhook body that carries the event; secrets sealed at rest open only with the same key."""

from __future__ import annotations

import json

import pytest

from finops_notify import channels, digest
from finops_notify.vault import SecretKeyMissing, Vault

MESSAGE = channels.Message(
    title="Budget of team <payments> crossed 80%",
    severity="critical",
    facts=(("Budget", "1,000.00 USD"), ("Actual", "1,200.00 USD")),
    ce_type="finops.allocation.budget_alerted.v1",
    event_id="e-1",
    occurred_at="2026-10-01T00:00:00+00:00",
    data={"scope": "payments"},
)


def test_slack_gets_block_kit_with_a_fallback_text():
    body = channels.slack_body(MESSAGE)

    assert body["text"] == MESSAGE.title
    assert body["blocks"][0]["type"] == "header"
    assert {"type": "mrkdwn", "text": "*Actual*\n1,200.00 USD"} in body["blocks"][1]["fields"]


def test_teams_gets_an_adaptive_card():
    card = channels.teams_body(MESSAGE)["attachments"][0]

    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    facts = next(b for b in card["content"]["body"] if b["type"] == "FactSet")["facts"]
    assert {"title": "Budget", "value": "1,000.00 USD"} in facts


def test_email_has_text_and_escaped_html_parts():
    msg = channels.email_message(MESSAGE, sender="finops@example.com", to=["cfo@example.com"])

    assert msg["Subject"] == "[FinOps critical] Budget of team <payments> crossed 80%"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Actual: 1,200.00 USD" in text
    assert "&lt;payments&gt;" in html and "<payments>" not in html


def test_a_webhook_body_carries_a_batch_of_events_each_with_its_idempotency_key():
    other = channels.Message(
        title="Another", severity="info", facts=(), ce_type="finops.recommendation.issued.v1", event_id="e-2",
        occurred_at="2026-10-02T00:00:00+00:00", data_json='{"kind": "idle", "amount": "1.10"}',
    )  # fmt: skip

    body = json.loads(channels.webhook_body(7, channels.webhook_item(MESSAGE) + b"," + channels.webhook_item(other)))

    assert body["delivery_id"] == 7
    first, second = body["events"]
    assert first["id"] == "e-1" and first["data"] == {"scope": "payments"}
    assert first["facts"]["Actual"] == "1,200.00 USD"
    assert first["idempotency_key"] == "event-e-1" and second["idempotency_key"] == "event-e-2"
    assert second["data"] == {"kind": "idle", "amount": "1.10"}  # the stored payload, spliced as it is


def test_sealed_secrets_open_with_the_same_key_only():
    sealed = Vault("key-one").seal(b"whsec_abc")

    assert b"whsec_abc" not in sealed
    assert Vault("key-one").open(sealed) == b"whsec_abc"
    with pytest.raises(SecretKeyMissing):
        Vault("key-two").open(sealed)
    with pytest.raises(SecretKeyMissing):
        Vault(None).seal(b"x")


def test_the_digest_sums_the_weeks_numbers():
    from datetime import date

    issued = "finops.recommendation.issued.v1"
    notes = [
        (issued, "a", {"estimated_monthly_savings": {"amount": "100.10", "currency": "USD"}}),
        (issued, "b", {"estimated_monthly_savings": {"amount": "0.20", "currency": "USD"}}),
        ("finops.cost.period_completed.v1", "p", {"billing_account_id": "A", "billing_period_start": "2026-10-01",
                                                  "totals": [{"currency": "EUR", "billed_cost": "1234.5"}]}),
    ]  # fmt: skip

    body = digest.compose(date(2026, 11, 16), notes)

    assert ["Potential monthly savings", "100.30 USD"] in body["facts"]
    assert ["New recommendations", "2"] in body["facts"]
    assert ("Completed billing periods", ["A 2026-10: billed 1,234.50 EUR"]) in body["sections"]
