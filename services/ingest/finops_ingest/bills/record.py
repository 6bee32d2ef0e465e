"""One source row under conversion: typed access by the provider's column names, errors that name the cell."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

from finops_ingest.bills import values
from finops_ingest.bills.errors import BillFormatError
from finops_ingest.bills.values import ValueRejected

_HINTS = {
    "not a decimal number": "Money and quantities must be plain decimal numbers such as 12.50 (no currency sign).",
    "not a finite decimal number": "Money and quantities must be plain decimal numbers such as 12.50.",
}


class Record:
    """Cells of one row; names are matched case-insensitively and the first present, non-null one wins."""

    __slots__ = ("data", "date_order", "file", "index", "row")

    def __init__(
        self,
        data: Mapping[str, object],
        *,
        file: str,
        row: int,
        index: Mapping[str, str],
        date_order: str = "mdy",
    ) -> None:
        self.data, self.file, self.row, self.index = data, file, row, index
        self.date_order = date_order  # the file's slash-date order, decided once for the file (bills.dates)

    def column(self, *names: str) -> str | None:
        """The actual column name of the first of `names` whose cell is not null."""
        for name in names:
            actual = self.index.get(name.lower())
            if actual is not None and values.text(self.data.get(actual)) is not None:
                return actual
        return None

    def raw(self, *names: str) -> object:
        actual = self.column(*names)
        return None if actual is None else self.data[actual]

    def text(self, *names: str) -> str | None:
        return values.text(self.raw(*names))

    def has(self, name: str) -> bool:
        return name.lower() in self.index

    def money(self, *names: str, default: Decimal | None = None) -> Decimal | None:
        """The exact Decimal in the first non-null of `names`; BillFormatError names the cell when it is not one."""
        actual = self.column(*names)
        if actual is None:
            return default
        return self.guard(actual, values.decimal, self.data[actual])

    def number(self, *names: str) -> str | None:
        """Exact decimal text of the first non-null of `names` (validated, never through a float)."""
        actual = self.column(*names)
        return None if actual is None else self.guard(actual, values.decimal_text, self.data[actual])

    def timestamp(self, *names: str) -> str | None:
        actual = self.column(*names)
        return None if actual is None else self.guard(actual, self._timestamp, self.data[actual])

    def when(self, *names: str):
        """The first non-null of `names` as an aware UTC datetime, or None."""
        actual = self.column(*names)
        return None if actual is None else self.guard(actual, self._parse_timestamp, self.data[actual])

    def _timestamp(self, value: object) -> str | None:
        return values.timestamp(value, self.date_order)

    def _parse_timestamp(self, value: object):
        return values.parse_timestamp(value, self.date_order)

    def mapping(self, *names: str) -> dict[str, object]:
        """A map or struct cell (Parquet native, or JSON object text in CSV) as a dict; {} when null."""
        actual = self.column(*names)
        if actual is None:
            return {}
        value = self.data[actual]
        if isinstance(value, str):
            try:
                value = json.loads(value, parse_float=Decimal)
            except json.JSONDecodeError:
                raise self.error(actual, value, "not a JSON object", "Nested values must be JSON text.") from None
        value = values.plain(value) if not isinstance(value, dict) else value
        if not isinstance(value, dict):
            raise self.error(actual, str(value), "not a JSON object", "Nested values must be JSON objects.")
        return value

    def items(self, *names: str) -> list[object]:
        """A repeated (array) cell, native or JSON array text, as a list; [] when null."""
        actual = self.column(*names)
        if actual is None:
            return []
        value = self.data[actual]
        if isinstance(value, str):
            try:
                value = json.loads(value, parse_float=Decimal)
            except json.JSONDecodeError:
                raise self.error(actual, value, "not a JSON array", "Repeated values must be JSON arrays.") from None
        if not isinstance(value, list):
            raise self.error(actual, str(value), "not a JSON array", "Repeated values must be JSON arrays.")
        return value

    def guard(self, column: str, convert, value: object):
        """Run a conversion on one cell and turn its rejection into a BillFormatError naming that cell."""
        try:
            return convert(value)
        except ValueRejected as exc:
            hint = _HINTS.get(exc.rule, "Fix the value and upload again.")
            raise self.error(column, exc.value, exc.rule, hint) from None

    def error(self, column: str | None, value: object, rule: str, hint: str) -> BillFormatError:
        shown = None if value is None else str(value)
        return BillFormatError(file=self.file, row=self.row, column=column, value=shown, rule=rule, hint=hint)
