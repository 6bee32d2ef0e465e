"""Query building: the persona scope becomes SQL conditions (a dimension a table lacks shows nothing), cursors
are opaque and refused when they come from elsewhere, months are checked."""

from __future__ import annotations

import pytest

from finops_console import cursor, queries


def test_scope_of_everything_adds_no_condition():
    sql = queries.Sql()

    sql.scope(None, {"team": "owner_team"})

    assert sql.where == ""


def test_engineering_scope_filters_its_teams_and_hides_tables_without_teams():
    sql = queries.Sql()

    sql.scope({"team": {"b", "a"}}, {"team": "owner_team"})
    hidden = queries.Sql()
    hidden.scope({"team": {"a"}}, {"product": "product"})

    assert sql.where == "WHERE owner_team = ANY($1::text[])"
    assert sql.params == [["a", "b"]]
    assert hidden.where == "WHERE false"


def test_cursor_round_trips_and_refuses_foreign_or_broken_ones():
    token = cursor.encode("decisions", ["2026-09-01T00:00:00+00:00", "id-1"])

    assert cursor.decode("decisions", token, length=2) == ["2026-09-01T00:00:00+00:00", "id-1"]
    with pytest.raises(cursor.BadCursor, match="another query"):
        cursor.decode("recommendations", token, length=2)
    with pytest.raises(cursor.BadCursor, match="not one this API issued"):
        cursor.decode("decisions", "%%%", length=2)
    with pytest.raises(cursor.BadCursor):
        cursor.decode("decisions", cursor.encode("decisions", [{"a": 1}, "x"]), length=2)


@pytest.mark.parametrize("value", ["2026-13", "26-01", "0000-01", "2026-1x"])
def test_months_are_checked(value):
    with pytest.raises(queries.BadQuery, match="period"):
        queries.parse_month(value, "period")


def test_a_month_is_its_first_day():
    assert queries.parse_month("2026-09", "period").isoformat() == "2026-09-01"
