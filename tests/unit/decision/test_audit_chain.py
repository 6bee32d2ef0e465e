"""The audit log's hash chain: a changed row and a deleted row are each named by their sequence number."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from finops_decision import audit

AT = datetime(2026, 3, 1, tzinfo=UTC)


def chain_of(n: int) -> list[dict]:
    rows, previous = [], audit.GENESIS
    for seq in range(1, n + 1):
        row = dict(
            seq=seq, at=AT + timedelta(seconds=seq), actor=f"p{seq}", action="request", decision_id=uuid.uuid4(),
            method="POST", path=f"/v1/x/{seq}", status=200, detail=audit.canonical_json({"n": seq}),
        )  # fmt: skip
        previous = audit.chain(previous, audit.row_bytes(**row))
        rows.append({**row, "hash": previous})
    return rows


def test_an_untouched_chain_verifies():
    report = audit.check(chain_of(5))

    assert report.ok and report.rows == 5 and str(report) == "audit log verified: 5 rows, sequence 1 to 5, chain intact"


def test_a_changed_row_is_named():
    rows = chain_of(5)
    rows[2] = {**rows[2], "status": 403}

    report = audit.check(rows)

    assert not report.ok and report.bad_seq == 3
    assert str(report).startswith("audit log broken at row 3: its content does not match its hash")


def test_a_changed_row_with_a_recomputed_hash_breaks_the_next_row():
    rows = chain_of(5)
    forged = {**rows[2], "actor": "someone else"}
    forged["hash"] = audit.chain(rows[1]["hash"], audit.row_bytes(**{k: v for k, v in forged.items() if k != "hash"}))
    rows[2] = forged

    assert audit.check(rows).bad_seq == 4


def test_a_deleted_row_is_named_even_the_first():
    rows = chain_of(5)

    middle = audit.check(rows[:2] + rows[3:])
    first = audit.check(rows[1:])
    several = audit.check(rows[:1] + rows[4:])

    assert middle.bad_seq == 3 and "row 3 is missing" in str(middle)
    assert first.bad_seq == 1
    assert several.bad_seq == 2 and "rows 2 to 4 are missing" in str(several)


def test_canonical_json_is_stable_and_exact():
    assert audit.canonical_json({"b": 1, "a": uuid.UUID(int=0)}) == (
        '{"a":"00000000-0000-0000-0000-000000000000","b":1}'
    )
    from decimal import Decimal

    assert audit.canonical_json({"x": Decimal("0.10")}) == '{"x":"0.10"}'
