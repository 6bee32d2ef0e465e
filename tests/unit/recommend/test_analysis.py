"""From the usage model to drafts: KPIs by hand, a plan owned by the pool's main team, one anomaly per incident,
and recommendation ids that a rerun on the same data computes again."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from finops_contracts.recommendations import Kind
from finops_recommend import analysis, existing, runs
from finops_recommend.prices import Program

T0 = datetime(2024, 9, 1, tzinfo=UTC)
SETTINGS = analysis.Settings()


def test_kpis_follow_the_finops_definitions():
    row = dict(
        pool="aws_compute_savings_plan/acct", provider_name="AWS", billing_account_id="acct", currency="USD",
        month=T0, on_demand_equivalent=Decimal("100"), covered=Decimal("60"), commitment_cost=Decimal("40"),
        unused=Decimal("4"), on_demand_cost=Decimal("40"),
    )  # fmt: skip

    (kpi,) = analysis.kpis([row])

    assert kpi.actual_cost.amount == Decimal("80")
    assert kpi.savings.amount == Decimal("20")
    assert kpi.effective_savings_rate == Decimal("0.2000")
    assert kpi.coverage == Decimal("0.6000")
    assert kpi.utilization == Decimal("0.9000")
    assert kpi.unused_commitment_cost.amount == Decimal("4")


def test_an_actual_cost_month_counts_the_fees_and_does_not_claim_a_utilization():
    # Given a month of an actual-cost bill: 7494.68 on demand equivalent, 3644.34 of it covered at cost 0, the
    # plan's fees 2903.04 as billed (4.032/h x 720 h), 3667.19 paid on demand; no unused lines, nothing amortized
    row = dict(
        pool="azure_savings_plan/acct", provider_name="Microsoft", billing_account_id="acct", currency="USD",
        month=T0, on_demand_equivalent=Decimal("7494.68"), covered=Decimal("3644.34"), commitment_cost=Decimal(0),
        unused=Decimal(0), on_demand_cost=Decimal("3667.19"), commitment_fee=Decimal("2903.04"),
    )  # fmt: skip

    (kpi,) = analysis.kpis([row])

    # Then the commitments cost their fees: actual 6570.23, savings 924.45, ESR 924.45 / 7494.68 = 0.1233
    assert kpi.actual_cost.amount == Decimal("6570.23")
    assert kpi.savings.amount == Decimal("924.45")
    assert kpi.effective_savings_rate == Decimal("0.1233")
    # and the bill cannot say how much of the fee went unused: no utilization rather than 100%
    assert kpi.utilization is None


def test_an_amortized_month_ignores_the_fees_it_already_spread():
    row = dict(
        pool="aws_compute_savings_plan/acct", provider_name="AWS", billing_account_id="acct", currency="USD",
        month=T0, on_demand_equivalent=Decimal("100"), covered=Decimal("60"), commitment_cost=Decimal("40"),
        unused=Decimal("4"), on_demand_cost=Decimal("40"), commitment_fee=Decimal("40"),
    )  # fmt: skip

    (kpi,) = analysis.kpis([row])

    assert kpi.actual_cost.amount == Decimal("80") and kpi.utilization == Decimal("0.9000")


def test_a_pool_with_steady_usage_gets_a_plan_owned_by_its_main_team():
    hours = [(T0 + timedelta(hours=h), 1, Decimal(10) + Decimal(h % 24) / 4) for h in range(24 * 30)]
    key = ("aws_compute_savings_plan/acct", "USD")
    teams = {key: [("payments", Decimal("7000")), ("search", Decimal("1000"))]}

    (plan,) = analysis.commitment_plans({key: hours}, teams, SETTINGS)

    assert plan.kind is Kind.COMMITMENT_PLAN and plan.owner_team == "payments"
    assert plan.savings.amount > 0 and plan.savings.currency == "USD"
    assert plan.purchases[0].start == T0 + timedelta(days=30)
    assert plan.evidence["team_shares"] == {"payments": "0.8750", "search": "0.1250"}
    assert all(not isinstance(v, float) for v in plan.evidence.values())


def test_too_little_history_gives_no_plan():
    hours = [(T0 + timedelta(hours=h), 1, Decimal(10)) for h in range(100)]

    assert analysis.commitment_plans({("aws_compute_savings_plan/acct", "USD"): hours}, {}, SETTINGS) == []


def test_a_recent_spike_is_one_anomaly_of_the_team_attributed_to_the_resource():
    rows = []
    for d in range(42):
        day = date(2024, 9, 1) + timedelta(days=d)
        rows.append(dict(team="ml", currency="USD", day=day, service_name="Amazon EC2", billing_account_id="a",
                         resource_id="i-steady", cost=Decimal("100")))  # fmt: skip
        if d >= 39:
            rows.append(dict(team="ml", currency="USD", day=day, service_name="Amazon SageMaker",
                             billing_account_id="a", resource_id="gpu-1", cost=Decimal("400")))  # fmt: skip

    (incident,) = analysis.anomalies(rows, SETTINGS)

    assert incident.kind is Kind.ANOMALY and incident.owner_team == "ml"
    assert incident.evidence["start"] == "2024-10-10" and incident.evidence["days"] == 3
    assert incident.savings.amount == Decimal("12175.00")  # 400 a day for a month
    assert {(c["dimension"], c["key"]) for c in incident.evidence["contributors"]} >= {("resource", "gpu-1")}
    # the same spike moved the new service's series and the account's: one alert, the team's, naming them
    assert incident.target == "anomaly/team/ml/USD/2024-10-10"
    assert {(x["dimension"], x["key"]) for x in incident.evidence["also_seen_in"]} == {
        ("service", "Amazon SageMaker"),
        ("account", "a"),
    }


def test_a_rise_spread_over_noisy_teams_is_caught_in_the_account_and_owned_by_the_team_that_moved_most():
    # Given two teams on different services whose daily costs swing by 30 in opposite directions (the account's
    # total stays at 200), then both rise for the last 3 days: checkout by 40, search by 25
    rows = []
    for d in range(42):
        day = date(2024, 9, 1) + timedelta(days=d)
        swing = Decimal(30 if d % 2 else -30)
        rise = d >= 39
        for team, service, cost in (
            ("checkout", "Amazon EC2", 100 + swing + (40 if rise else 0)),
            ("search", "Amazon RDS", 100 - swing + (25 if rise else 0)),
        ):
            rows.append(dict(team=team, currency="USD", day=day, service_name=service, billing_account_id="a",
                             resource_id=f"r-{team}", cost=Decimal(cost)))  # fmt: skip

    # When (judging the last week only: this is about which series sees the rise; the every-other-day swing also
    # fools the young weekday baseline of checkout's series once, on 28 September, which is not this test's subject)
    (incident,) = analysis.anomalies(rows, analysis.Settings(anomaly_recent_days=7))

    # Then neither team's nor service's series sees it through its swings, the account's does (+65 on 200 a day)
    assert incident.target == "anomaly/account/a/USD/2024-10-10"
    assert incident.evidence["series"] == {"dimension": "account", "key": "a"}
    assert incident.owner_team == "checkout"
    assert incident.evidence["change"] == "195.00" and incident.evidence["also_seen_in"] == []


def test_ids_and_fingerprints_are_the_same_on_a_rerun_and_change_with_the_month():
    draft = analysis.Draft(
        kind=Kind.IDLE, target="resource/AWS/a/eip-1", generation="2024-10", title="t", owner_team="search",
        personas=(), savings=analysis.Money(amount=Decimal("3.65"), currency="USD"), evidence={"rule": "x"},
        as_of=T0,
    )  # fmt: skip
    later = analysis.Draft(**{**draft.__dict__, "generation": "2024-11"})

    assert runs.recommendation_id(draft) == runs.recommendation_id(analysis.Draft(**draft.__dict__))
    assert runs.recommendation_id(draft) != runs.recommendation_id(later)
    content = runs._content(draft, runs.recommendation_id(draft))
    assert runs.fingerprint(content) == runs.fingerprint(dict(reversed(content.items())))


def test_a_commitment_held_is_netted_and_its_expiry_is_replaced_in_the_month_it_ends():
    # Given 30 days of 100 per hour, and a savings plan of the contract dataset covering 60 of it that ends two
    # months after the data does
    hours = [(T0 + timedelta(hours=h), 1, Decimal(100)) for h in range(24 * 30)]
    end = T0 + timedelta(days=30)
    held = existing.KnownCommitment(
        commitment_id="sp-1", source="contract_dataset", program=Program.AWS_COMPUTE_SAVINGS_PLAN,
        starts_at=T0 - timedelta(days=300), ends_at=end + timedelta(hours=2 * 730), term_months=12,
        billing_account_id="acct", covered_usage_per_hour=Decimal("60"), currency="USD",
    )  # fmt: skip

    # When
    (plan,) = analysis.commitment_plans({("aws_compute_savings_plan/acct", "USD"): hours}, {}, SETTINGS, known=[held])

    # Then 40 is bought now, and the 60 that expires is bought again at month 2 (anticipated in the plan)
    assert [(p.start, p.covered_usage_per_hour) for p in plan.purchases] == [
        (end, Decimal("40.0000")),
        (end + timedelta(hours=2 * 730), Decimal("60.0000")),
    ]
    (shown,) = plan.evidence["existing_commitments"]
    assert shown["commitment_id"] == "sp-1" and shown["sources"] == ["contract_dataset"]
    assert plan.evidence["existing_per_month"][:3] == ["60.0000", "60.0000", "0.0000"]


def test_an_account_with_one_steady_family_gets_the_family_instance_plan_with_its_scope():
    # Given 30 days of m5 usage in us-east-1 at 10 per hour, all of the account's compute
    hours = [(T0 + timedelta(hours=h), 1, Decimal(10)) for h in range(24 * 30)]
    family = ("AWS", "acct", "us-east-1", "m5", "USD")

    # When
    (plan,) = analysis.commitment_plans(
        {("aws_compute_savings_plan/acct", "USD"): hours}, {}, SETTINGS, families={family: hours},
        family_teams={family: [("payments", Decimal(7200))]},
    )  # fmt: skip

    # Then the deeper-discount EC2 Instance Savings Plan covers it, for the family's team
    assert plan.target == "pool/aws_ec2_instance_savings_plan/acct/us-east-1/m5/USD"
    assert plan.owner_team == "payments" and plan.provider_name == "AWS"
    (purchase,) = plan.purchases
    assert purchase.program == "aws_ec2_instance_savings_plan" and purchase.term_months == 36
    assert purchase.scope == {"region": "us-east-1", "instance_family": "m5"}
    assert purchase.covered_usage_per_hour == Decimal("10.0000")
    assert purchase.commitment_per_hour.amount == Decimal("4.4000")  # 10 x (1 - 0.56)


def test_when_finance_allows_upfront_the_plan_pays_upfront_only_while_money_is_cheap_enough():
    # Given the steady m5 account of the example above, and finance allowing partial and all upfront payment
    hours = [(T0 + timedelta(hours=h), 1, Decimal(10)) for h in range(24 * 30)]
    family = ("AWS", "acct", "us-east-1", "m5", "USD")

    def purchase(cost_of_capital: Decimal):
        settings = analysis.Settings(
            payment_options=("partial_upfront", "all_upfront"), cost_of_capital=cost_of_capital
        )
        (plan,) = analysis.commitment_plans(
            {("aws_compute_savings_plan/acct", "USD"): hours}, {}, settings, families={family: hours},
            family_teams={family: [("payments", Decimal(7200))]},
        )  # fmt: skip
        (bought,) = plan.purchases
        return plan, bought

    # When money costs 1% a year, all upfront (0.579 off, worth 0.5729 paid monthly) beats no upfront (0.56)
    plan, cheap = purchase(Decimal("0.01"))
    assert (cheap.term_months, cheap.payment) == (36, "all_upfront")
    assert cheap.commitment_per_hour.amount == Decimal("4.2100")  # 10 x (1 - 0.579): the rate's own discount
    assert plan.evidence["payment_options"] == ["all_upfront", "no_upfront", "partial_upfront"]
    assert plan.evidence["cost_of_capital"] == "0.01"
    # and at 8% a year the upfront options are worth less than 0.56 (0.5300 and 0.5450): no upfront
    _, dear = purchase(Decimal("0.08"))
    assert (dear.term_months, dear.payment) == (36, "no_upfront")
    assert dear.commitment_per_hour.amount == Decimal("4.4000")


def test_an_incident_mid_month_is_alerted_when_the_monthly_bill_brings_it_weeks_later():
    # Given 100 days from 1 July 2024 (data up to 8 October, as a bill closed at month end brings it) of one team
    # on one resource at 100 a day, with a 6x day on 23 August (46 days before the last day) and another on
    # 20 July (80 days before)
    rows = []
    for d in range(100):
        day = date(2024, 7, 1) + timedelta(days=d)
        cost = Decimal(600) if day in (date(2024, 8, 23), date(2024, 7, 20)) else Decimal(100)
        rows.append(dict(team="ml", currency="USD", day=day, service_name="Virtual Machines",
                         billing_account_id="a", resource_id="vm-1", cost=cost))  # fmt: skip

    # When
    (incident,) = analysis.anomalies(rows, SETTINGS)

    # Then the August one is news (within the data's last two months), of 500 that day; July's is history
    assert incident.evidence["start"] == "2024-08-23" and incident.evidence["change"] == "500.00"
    assert incident.target == "anomaly/team/ml/USD/2024-08-23"
