"""The one error a billing file can raise: it names where the file is wrong and what to do about it."""

from __future__ import annotations


class BillFormatError(ValueError):
    """The billing file cannot be read or converted; str() says where, what and how to fix it."""

    def __init__(
        self,
        *,
        file: str,
        rule: str,
        hint: str,
        row: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        self.file, self.row, self.column, self.value, self.rule, self.hint = file, row, column, value, rule, hint
        where = f"File {file}" + (f", row {row}" if row is not None else "")
        where += f", column {column!r}" if column else ""
        shown = f" (value {value[:80]!r})" if value is not None else ""
        super().__init__(f"{where}: {rule}{shown}; {hint}")

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "rule": self.rule,
            "hint": self.hint,
            "message": str(self),
        }
