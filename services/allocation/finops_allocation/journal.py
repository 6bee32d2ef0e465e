"""The general-ledger journal of a closed period, for an ERP: chargeback lines become balanced debit and credit
lines per cost center and GL account.

Each cost center's expense account is debited with its chargeback (credited when its credits exceed its
charges), and the clearing account is credited with the same amount, on the same cost center or on the central
one the mapping names. So debits equal credits exactly, per currency, and per cost center too when offsets stay
on their own cost center. Restatements of closed periods travel as adjustment lines, kept apart and marked.

The journal is content-addressed: its id is a uuid5 of the period, the entity and a hash of its lines, and its
CSV and JSON exports are deterministic, so exporting the same period twice gives the same id and the same bytes,
and any change to an amount, account or cost center gives a new id.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from finops_allocation.splits import minor_unit_places, round_preserving_sum

JOURNAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "finops:allocation:journal")
"""The uuid5 namespace of journal ids; never change it, or every exported journal id changes."""

CSV_COLUMNS = (
    "journal_id",
    "entity",
    "period_start",
    "period_end",
    "line",
    "side",
    "cost_center",
    "gl_account",
    "currency",
    "debit",
    "credit",
    "adjustment",
    "adjusts_period",
    "memo",
)
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class JournalError(ValueError):
    """Chargeback lines or a mapping that cannot make a journal; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class ChargebackLine:
    """What one cost center is charged in one currency, as allocation computed it for the period.

    `gl_account` books the line to that expense account directly; otherwise the mapping decides from `category`
    and `cost_center`. An adjustment carries a restatement of a closed period (`adjusts_period`, e.g. "2026-01")
    into this one.
    """

    cost_center: str
    currency: str
    amount: Decimal
    category: str | None = None
    gl_account: str | None = None
    adjustment: bool = False
    adjusts_period: str | None = None


class AccountMapping(BaseModel):
    """Which GL accounts a chargeback is booked to; configuration, so it reads from YAML or JSON.

    The expense account of a line is the first that applies: the line's own `gl_account`, the account of its
    category, the account of its cost center, the default. The offset of every expense line goes to
    `clearing_account`, on the line's own cost center, or on `clearing_cost_center` when one is named (a central
    IT cost center that recovers the cost).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    clearing_account: str = Field(min_length=1)
    default_expense_account: str | None = None
    expense_by_category: dict[str, str] = Field(default_factory=dict)
    expense_by_cost_center: dict[str, str] = Field(default_factory=dict)
    clearing_cost_center: str | None = None

    def expense_account(self, line: ChargebackLine) -> str:
        """The expense account a chargeback line is booked to."""
        account = (
            line.gl_account
            or (self.expense_by_category.get(line.category) if line.category is not None else None)
            or self.expense_by_cost_center.get(line.cost_center)
            or self.default_expense_account
        )
        if not account:
            raise JournalError(
                f"no expense account for cost center {line.cost_center!r}, category {line.category!r}: "
                "add it to expense_by_cost_center or expense_by_category, or set default_expense_account"
            )
        return account


class Side(StrEnum):
    EXPENSE = "expense"
    CLEARING = "clearing"


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One line of the journal: exactly one of debit and credit is non-zero."""

    line: int
    side: Side
    cost_center: str
    gl_account: str
    currency: str
    debit: Decimal
    credit: Decimal
    adjustment: bool
    adjusts_period: str
    memo: str


@dataclass(frozen=True, slots=True)
class Journal:
    """A balanced journal for one entity and closed period, with its stable id."""

    journal_id: uuid.UUID
    entity: str
    period_start: date
    period_end: date  # exclusive
    places: int | None  # decimals of every amount; None: each currency's minor unit (2 for USD, 0 for JPY)
    content_hash: str
    lines: tuple[JournalLine, ...]

    def totals(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Currency -> (debits, credits), in currency order."""
        sums: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for line in self.lines:
            sums[line.currency][0] += line.debit
            sums[line.currency][1] += line.credit
        return {currency: (d, c) for currency, (d, c) in sorted(sums.items())}

    def is_balanced(self) -> bool:
        """Whether debits equal credits exactly in every currency."""
        return all(debit == credit for debit, credit in self.totals().values())

    def to_csv(self) -> bytes:
        """The journal as UTF-8 CSV: a header, then one row per line in line order, newline-terminated."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for line in self.lines:
            writer.writerow(
                (
                    str(self.journal_id),
                    self.entity,
                    self.period_start.isoformat(),
                    self.period_end.isoformat(),
                    line.line,
                    line.side.value,
                    line.cost_center,
                    line.gl_account,
                    line.currency,
                    self._money(line.debit, line.currency),
                    self._money(line.credit, line.currency),
                    "true" if line.adjustment else "false",
                    line.adjusts_period,
                    line.memo,
                )
            )
        return out.getvalue().encode("utf-8")

    def to_json(self) -> bytes:
        """The journal as UTF-8 JSON: fixed key order, amounts as decimal strings, two-space indent."""
        document = {
            "journal_id": str(self.journal_id),
            "entity": self.entity,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "content_hash": self.content_hash,
            "totals": [
                {"currency": currency, "debit": self._money(debit, currency), "credit": self._money(credit, currency)}
                for currency, (debit, credit) in self.totals().items()
            ],
            "lines": [
                {
                    "line": line.line,
                    "side": line.side.value,
                    "cost_center": line.cost_center,
                    "gl_account": line.gl_account,
                    "currency": line.currency,
                    "debit": self._money(line.debit, line.currency),
                    "credit": self._money(line.credit, line.currency),
                    "adjustment": line.adjustment,
                    "adjusts_period": line.adjusts_period,
                    "memo": line.memo,
                }
                for line in self.lines
            ],
        }
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    def _money(self, amount: Decimal, currency: str) -> str:
        return f"{amount:.{_places(self.places, currency)}f}"


def build_journal(
    lines: Iterable[ChargebackLine],
    mapping: AccountMapping,
    *,
    entity: str,
    period_start: date,
    period_end: date,
    places: int | None = None,
) -> Journal:
    """The journal of a closed period from its chargeback lines.

    Lines are summed per cost center, expense account, currency and adjustment; each sum is rounded to `places`
    decimals (default: the currency's minor unit) so that a currency's rounded sums add up to its exact total
    rounded once (largest remainder), and sums that come to zero make no line. The order of the input lines does
    not matter.
    """
    if not entity:
        raise JournalError("a journal needs an entity (the legal entity or company code it is booked in)")
    if period_end <= period_start:
        raise JournalError(f"period end {period_end} must be after its start {period_start}")
    expense: dict[tuple[str, str, str, bool, str], Decimal] = defaultdict(Decimal)
    for index, line in enumerate(lines):
        _check(line, index)
        adjusts = line.adjusts_period or ""
        if adjusts and not line.adjustment:
            raise JournalError(f"line {index}: adjusts_period {adjusts!r} is set on a line not marked as adjustment")
        key = (line.currency, line.cost_center, mapping.expense_account(line), line.adjustment, adjusts)
        expense[key] += line.amount

    rounded: dict[tuple[str, str, str, bool, str], Decimal] = {}
    for currency in sorted({key[0] for key in expense}):
        group = {key: amount for key, amount in expense.items() if key[0] == currency}
        for key, value in round_preserving_sum(group, places=_places(places, currency)).items():
            if value:
                rounded[key] = value

    clearing: dict[tuple[str, str, str, bool, str], Decimal] = defaultdict(Decimal)
    for (currency, cost_center, _account, adjustment, adjusts), amount in rounded.items():
        center = mapping.clearing_cost_center or cost_center
        clearing[(currency, center, mapping.clearing_account, adjustment, adjusts)] -= amount

    entries = [(Side.EXPENSE, key, amount) for key, amount in rounded.items()]
    entries += [(Side.CLEARING, key, amount) for key, amount in clearing.items() if amount]
    # currency, then regular before adjustments, then expense before clearing, then cost center and account
    entries.sort(key=lambda e: (e[1][0], e[1][3], e[1][4], e[0] is Side.CLEARING, e[1][1], e[1][2]))
    period = f"{period_start.isoformat()}/{period_end.isoformat()}"
    journal_lines = tuple(
        JournalLine(
            line=number,
            side=side,
            cost_center=cost_center,
            gl_account=account,
            currency=currency,
            debit=amount if amount > 0 else Decimal(0).scaleb(-_places(places, currency)),
            credit=-amount if amount < 0 else Decimal(0).scaleb(-_places(places, currency)),
            adjustment=adjustment,
            adjusts_period=adjusts,
            memo=_memo(side, period, adjusts),
        )
        for number, (side, (currency, cost_center, account, adjustment, adjusts), amount) in enumerate(entries, 1)
    )
    content_hash = _content_hash(journal_lines, places)
    journal_id = uuid.uuid5(JOURNAL_NAMESPACE, f"{period}|{entity}|{content_hash}")
    return Journal(journal_id, entity, period_start, period_end, places, content_hash, journal_lines)


def _memo(side: Side, period: str, adjusts: str) -> str:
    what = "chargeback" if side is Side.EXPENSE else "chargeback clearing"
    return f"{what} {period}" + (f", adjustment for restated {adjusts}" if adjusts else "")


def _places(places: int | None, currency: str) -> int:
    return minor_unit_places(currency) if places is None else places


def _content_hash(lines: tuple[JournalLine, ...], places: int | None) -> str:
    digest = hashlib.sha256()
    for line in lines:
        fields = (
            line.side.value,
            line.cost_center,
            line.gl_account,
            line.currency,
            f"{line.debit:.{_places(places, line.currency)}f}",
            f"{line.credit:.{_places(places, line.currency)}f}",
            "1" if line.adjustment else "0",
            line.adjusts_period,
        )
        digest.update(json.dumps(fields, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _check(line: ChargebackLine, index: int) -> None:
    where = f"line {index} ({line.cost_center!r})"
    if not line.cost_center:
        raise JournalError(f"line {index}: a chargeback line needs a cost center")
    if not _CURRENCY.match(line.currency or ""):
        raise JournalError(f"{where}: currency {line.currency!r} is not an ISO 4217 code such as USD")
    if isinstance(line.amount, bool) or not isinstance(line.amount, Decimal | int):
        raise JournalError(f"{where}: amount must be a Decimal, got {type(line.amount).__name__} {line.amount!r}")
    if isinstance(line.amount, Decimal) and not line.amount.is_finite():
        raise JournalError(f"{where}: amount must be finite, got {line.amount}")
