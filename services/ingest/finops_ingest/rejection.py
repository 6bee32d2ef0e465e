"""Why a billing file is refused: one error (file, row, column, value, rule, what to do), and the report of a
rejected file, which names each kind of error once, where it first occurs, and how many rows have it."""

from __future__ import annotations

from finops_contracts.events import RejectionDetail
from finops_ingest.bills.errors import BillFormatError


class BillingFileRejected(BillFormatError):
    """One error in a billing file, found by ingest's own checks; the message says where and what to do.
    Row numbers are the file's lines for text files (the header is row 1)."""


class FileRejected(Exception):
    """The whole file is refused; `details` lists each kind of error with its count."""

    def __init__(self, file: str, details: list[RejectionDetail]) -> None:
        self.file = file
        self.details = details
        self.sha256: str | None = None
        """The key the rejection was recorded under, once it was."""
        first = details[0]
        more = sum(d.count for d in details) - 1
        where = (
            file + (f", row {first.row}" if first.row else "") + (f", column {first.column}" if first.column else "")
        )
        suffix = f" ({more} more error(s) in {len(details)} kind(s))" if more else ""
        super().__init__(f"{where}: {first.rule}. {first.hint}{suffix}")

    @classmethod
    def single(cls, error: BillingFileRejected) -> FileRejected:
        return cls(error.file, [_detail(error)])

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "message": str(self),
            "error_count": sum(d.count for d in self.details),
            "errors": [d.model_dump() for d in self.details],
        }


def _detail(error: BillingFileRejected) -> RejectionDetail:
    value = None if error.value is None else error.value[:200]
    return RejectionDetail(row=error.row, column=error.column, value=value, rule=error.rule, hint=error.hint)


class Problems:
    """Collects row errors so one upload reports them all, grouped by column and rule."""

    MAX_KINDS = 50

    def __init__(self, file: str) -> None:
        self.file = file
        self._kinds: dict[tuple[str | None, str], list] = {}

    def add(self, error: BillingFileRejected, count: int = 1) -> None:
        """Record an error; `count` rows have it (the first of them is the one `error` names)."""
        key = (error.column, error.rule)
        if key in self._kinds:
            self._kinds[key][1] += count
        elif len(self._kinds) < self.MAX_KINDS:
            self._kinds[key] = [error, count]

    def __bool__(self) -> bool:
        return bool(self._kinds)

    def rejection(self) -> FileRejected:
        details = [_detail(e).model_copy(update={"count": n}) for e, n in self._kinds.values()]
        return FileRejected(self.file, details)
