"""CUR commitment rows to FOCUS: which rows carry CommitmentDiscountStatus, and what the unused one costs."""

from __future__ import annotations

from decimal import Decimal

from finops_ingest.bills import aws
from finops_ingest.bills.record import Record

SP = "arn:aws:savingsplans::111122223333:savingsplan/sp-1"


def cur(**cells: str) -> dict:
    data = {
        "lineItem/UsageStartDate": "2026-01-01T00:00:00Z", "lineItem/UsageEndDate": "2026-01-01T01:00:00Z",
        "bill/BillingPeriodStartDate": "2026-01-01T00:00:00Z", "lineItem/UsageAccountId": "111122223333",
        "bill/PayerAccountId": "111122223333", "lineItem/ProductCode": "ComputeSavingsPlans",
        **cells,
    }  # fmt: skip
    return aws.convert(Record(data, file="cur.csv", row=2, index={k.lower(): k for k in data}))


def test_a_savings_plan_fee_is_the_unused_row_and_covered_usage_the_used_one():
    # Given an hour of a 10.00 savings plan of which 9.70 was used: its recurring fee, and a covered usage line
    fee = cur(**{"lineItem/LineItemType": "SavingsPlanRecurringFee", "lineItem/UnblendedCost": "10.00",
                 "savingsPlan/SavingsPlanARN": SP, "savingsPlan/TotalCommitmentToDate": "10.00",
                 "savingsPlan/UsedCommitment": "9.70"})  # fmt: skip
    covered = cur(**{"lineItem/LineItemType": "SavingsPlanCoveredUsage", "lineItem/UnblendedCost": "14.00",
                     "lineItem/ProductCode": "AmazonEC2", "savingsPlan/SavingsPlanARN": SP,
                     "savingsPlan/SavingsPlanEffectiveCost": "9.70"})  # fmt: skip
    plain = cur(**{"lineItem/LineItemType": "Usage", "lineItem/UnblendedCost": "1.00"})

    # Then the fee bills the whole 10.00, its EffectiveCost 0.30 is the unused part, and it says so
    assert fee["ChargeCategory"] == "Purchase" and Decimal(fee["BilledCost"]) == Decimal("10.00")
    assert Decimal(fee["EffectiveCost"]) == Decimal("0.30")
    assert fee["CommitmentDiscountStatus"] == "Unused" and fee["CommitmentDiscountId"] == SP
    # and the covered usage is "Used", a line no commitment names has no status
    assert covered["CommitmentDiscountStatus"] == "Used"
    assert plain["CommitmentDiscountStatus"] is None
