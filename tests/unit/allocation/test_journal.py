"""General-ledger journal of a closed period: balanced, content-addressed, byte-stable exports."""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finops_allocation.journal import AccountMapping, ChargebackLine, JournalError, Side, build_journal

D = Decimal
FEB = {"entity": "ACME-US", "period_start": date(2026, 2, 1), "period_end": date(2026, 3, 1)}
MAPPING = AccountMapping(
    clearing_account="1990",
    default_expense_account="6100",
    expense_by_category={"Storage": "6120"},
    expense_by_cost_center={"CC-RND": "6500"},
)
LINES = [
    ChargebackLine("CC-10", "USD", D("100.00")),
    ChargebackLine("CC-10", "USD", D("25.50")),
    ChargebackLine("CC-20", "USD", D("40.25"), category="Storage"),
    ChargebackLine("CC-RND", "USD", D("12.00")),
    ChargebackLine("CC-20", "EUR", D("7.10"), gl_account="6999"),
    ChargebackLine("CC-10", "USD", D("-3.00"), adjustment=True, adjusts_period="2026-01"),
]


def rows(journal) -> list[tuple]:
    return [(x.side, x.cost_center, x.gl_account, x.currency, x.debit, x.credit, x.adjustment) for x in journal.lines]


def test_journal_lines_by_hand():
    # USD: CC-10 100.00 + 25.50 = 125.50 to the default 6100; CC-20 Storage 40.25 to 6120; CC-RND 12.00 to its
    # own 6500; each credited to clearing 1990 on the same cost center. The restatement of January, -3.00 on
    # CC-10, is a separate adjustment pair: credit 6100, debit 1990. EUR: 7.10 to the line's own 6999.
    # USD debits 125.50 + 40.25 + 12.00 + 3.00 = 180.75 = credits 125.50 + 40.25 + 12.00 + 3.00.

    journal = build_journal(LINES, MAPPING, **FEB)

    E, C = Side.EXPENSE, Side.CLEARING
    z = D("0.00")
    assert rows(journal) == [
        (E, "CC-20", "6999", "EUR", D("7.10"), z, False),
        (C, "CC-20", "1990", "EUR", z, D("7.10"), False),
        (E, "CC-10", "6100", "USD", D("125.50"), z, False),
        (E, "CC-20", "6120", "USD", D("40.25"), z, False),
        (E, "CC-RND", "6500", "USD", D("12.00"), z, False),
        (C, "CC-10", "1990", "USD", z, D("125.50"), False),
        (C, "CC-20", "1990", "USD", z, D("40.25"), False),
        (C, "CC-RND", "1990", "USD", z, D("12.00"), False),
        (E, "CC-10", "6100", "USD", z, D("3.00"), True),
        (C, "CC-10", "1990", "USD", D("3.00"), z, True),
    ]
    assert [x.line for x in journal.lines] == list(range(1, 11))
    assert journal.totals() == {"EUR": (D("7.10"), D("7.10")), "USD": (D("180.75"), D("180.75"))}
    assert journal.is_balanced()
    adjustment = journal.lines[-2]
    assert adjustment.adjusts_period == "2026-01" and "adjustment for restated 2026-01" in adjustment.memo


def test_offsets_go_to_a_central_cost_center_when_the_mapping_names_one():
    mapping = MAPPING.model_copy(update={"clearing_cost_center": "CC-IT"})

    journal = build_journal(LINES[:4], mapping, **FEB)

    clearing = [x for x in journal.lines if x.side is Side.CLEARING]
    assert [(x.cost_center, x.gl_account, x.credit) for x in clearing] == [("CC-IT", "1990", D("177.75"))]
    assert journal.is_balanced()


def test_exporting_twice_gives_the_same_id_and_bytes_whatever_the_input_order():
    shuffled = LINES[:]
    random.Random(4).shuffle(shuffled)

    first = build_journal(LINES, MAPPING, **FEB)
    second = build_journal(shuffled, MAPPING, **FEB)

    assert shuffled != LINES
    assert second.journal_id == first.journal_id and first.journal_id.version == 5
    assert second.to_csv() == first.to_csv()
    assert second.to_json() == first.to_json()


@pytest.mark.parametrize(
    "change",
    [
        lambda lines: [replace(lines[0], amount=D("100.01")), *lines[1:]],
        lambda lines: [replace(lines[0], cost_center="CC-11"), *lines[1:]],
        lambda lines: [replace(lines[0], gl_account="6101"), *lines[1:]],
        lambda lines: [*lines[:-1], replace(lines[-1], adjusts_period="2025-12")],
        lambda lines: lines[:-1],
    ],
    ids=["amount", "cost center", "account", "restated period", "line removed"],
)
def test_any_change_of_content_gives_a_new_id(change):
    original = build_journal(LINES, MAPPING, **FEB)

    changed = build_journal(change(LINES), MAPPING, **FEB)

    assert changed.journal_id != original.journal_id
    assert changed.to_csv() != original.to_csv()


def test_the_same_lines_for_another_entity_or_period_get_another_id():
    original = build_journal(LINES, MAPPING, **FEB)

    other_entity = build_journal(LINES, MAPPING, **{**FEB, "entity": "ACME-DE"})
    march = build_journal(LINES, MAPPING, entity="ACME-US", period_start=date(2026, 3, 1), period_end=date(2026, 4, 1))

    assert len({original.journal_id, other_entity.journal_id, march.journal_id}) == 3
    assert original.content_hash == other_entity.content_hash == march.content_hash


def test_csv_export_reads_back_balanced():
    journal = build_journal(LINES, MAPPING, **FEB)

    table = list(csv.DictReader(io.StringIO(journal.to_csv().decode("utf-8"))))

    assert len(table) == len(journal.lines)
    assert {row["journal_id"] for row in table} == {str(journal.journal_id)}
    for currency in ("EUR", "USD"):
        mine = [row for row in table if row["currency"] == currency]
        assert sum(D(r["debit"]) for r in mine) == sum(D(r["credit"]) for r in mine) > 0
    assert journal.to_csv().endswith(b"\n") and b"\r" not in journal.to_csv()


def test_json_export_carries_amounts_as_decimal_strings():
    journal = build_journal(LINES, MAPPING, **FEB)

    document = json.loads(journal.to_json())

    assert uuid.UUID(document["journal_id"]) == journal.journal_id
    assert document["totals"] == [
        {"currency": "EUR", "debit": "7.10", "credit": "7.10"},
        {"currency": "USD", "debit": "180.75", "credit": "180.75"},
    ]
    assert document["lines"][0]["debit"] == "7.10" and document["lines"][-1]["adjustment"] is True


def test_sub_cent_amounts_round_so_the_currency_total_survives():
    # 0.004 x 3 cost centers = 0.012 -> 0.01 in total: each floors to 0.00 with remainder .4, one cent left,
    # given to the first cost center by key. So one debit line of 0.01 and its clearing line.
    lines = [ChargebackLine(cc, "USD", D("0.004")) for cc in ("CC-3", "CC-1", "CC-2")]

    journal = build_journal(lines, MAPPING, **FEB)

    assert rows(journal) == [
        (Side.EXPENSE, "CC-1", "6100", "USD", D("0.01"), D("0.00"), False),
        (Side.CLEARING, "CC-1", "1990", "USD", D("0.00"), D("0.01"), False),
    ]


def test_yen_amounts_have_no_decimals():
    # 1000.4 + 0.4 = 1000.8 JPY -> 1001 in total: floors 1000 and 0, remainders .4 each, one yen to CC-1.
    lines = [ChargebackLine("CC-1", "JPY", D("1000.4")), ChargebackLine("CC-2", "JPY", D("0.4"))]

    journal = build_journal(lines, MAPPING, **FEB)

    assert [(x.cost_center, x.debit, x.credit) for x in journal.lines] == [
        ("CC-1", D("1001"), D("0")),
        ("CC-1", D("0"), D("1001")),
    ]
    assert b",CC-1,6100,JPY,1001,0,false," in journal.to_csv()


def test_lines_that_net_to_zero_make_no_journal_line():
    lines = [ChargebackLine("CC-1", "USD", D("5.00")), ChargebackLine("CC-1", "USD", D("-5.00"))]

    journal = build_journal(lines, MAPPING, **FEB)

    assert journal.lines == () and journal.is_balanced()


@pytest.mark.parametrize(
    ("line", "mapping", "message"),
    [
        (ChargebackLine("CC-9", "USD", D(1)), AccountMapping(clearing_account="1990"), "no expense account for"),
        (ChargebackLine("CC-9", "usd", D(1)), MAPPING, "not an ISO 4217 code"),
        (ChargebackLine("CC-9", "USD", 1.0), MAPPING, "must be a Decimal, got float"),
        (ChargebackLine("", "USD", D(1)), MAPPING, "needs a cost center"),
        (ChargebackLine("CC-9", "USD", D(1), adjusts_period="2026-01"), MAPPING, "not marked as adjustment"),
    ],
)
def test_bad_lines_are_refused_with_a_message_that_says_what(line, mapping, message):
    with pytest.raises(JournalError, match=message):
        build_journal([line], mapping, **FEB)


cost_centers = st.sampled_from(["CC-1", "CC-2", "CC-3", "CC-RND"])
chargeback = st.builds(
    ChargebackLine,
    cost_center=cost_centers,
    currency=st.sampled_from(["USD", "EUR", "JPY"]),
    amount=st.decimals(min_value=-(10**6), max_value=10**7, places=4),
    category=st.sampled_from([None, "Storage", "Compute"]),
    adjustment=st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(chargeback, max_size=40), central=st.booleans())
def test_every_journal_balances_per_currency_and_keeps_the_rounded_total(lines, central):
    mapping = MAPPING.model_copy(update={"clearing_cost_center": "CC-IT" if central else None})

    journal = build_journal(lines, mapping, **FEB)

    assert journal.is_balanced()
    for currency in {line.currency for line in lines}:
        unit = D("1") if currency == "JPY" else D("0.01")
        net = sum(x.debit - x.credit for x in journal.lines if x.currency == currency and x.side is Side.EXPENSE)
        assert net == sum(line.amount for line in lines if line.currency == currency).quantize(unit)
        assert all(x.debit == x.debit.quantize(unit) for x in journal.lines if x.currency == currency)
    if not central:
        for center, currency in {(x.cost_center, x.currency) for x in journal.lines}:
            mine = [x for x in journal.lines if (x.cost_center, x.currency) == (center, currency)]
            assert sum(x.debit for x in mine) == sum(x.credit for x in mine)
    assert all((x.debit == 0) != (x.credit == 0) for x in journal.lines)
