"""A table of truth against published value, one row per number: what the simulated company says a number must
be, what a service published, the tolerance that applies, and whether they agree. Printed and written as JSON
(bench/results/truth.json) by the truth test and the demo."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Row:
    area: str
    """What kind of number: chargeback, showback, journal, bill, pool, kpi, finding, guard..."""
    name: str
    """Which one: period, cost center, pool, resource..."""
    truth: str
    published: str
    source: str
    """Where the published number was read: the API route or event."""
    rule: str
    """exact, cent (to the cent), or the tolerance and why."""
    ok: bool | None
    """None: published with no truth to hold it against (said so, never counted as equal)."""


@dataclass
class TruthTable:
    rows: list[Row] = field(default_factory=list)

    def cent(self, area: str, name: str, truth: Decimal, published: Decimal | None, source: str) -> bool:
        ok = published is not None and truth.quantize(Decimal("0.01")) == published.quantize(Decimal("0.01"))
        return self._add(area, name, truth, published, source, "to the cent", ok)

    def exact(self, area: str, name: str, truth: Any, published: Any, source: str) -> bool:
        return self._add(area, name, truth, published, source, "exact", truth == published)

    def within(
        self,
        area: str,
        name: str,
        truth: Decimal,
        published: Decimal | None,
        source: str,
        *,
        rel: Decimal = Decimal(0),
        absolute: Decimal = Decimal("0.01"),
        why: str,
    ) -> bool:
        ok = published is not None and abs(published - truth) <= rel * abs(truth) + absolute
        return self._add(area, name, truth, published, source, f"within {rel:%} + {absolute} ({why})", ok)

    def at_most(self, area: str, name: str, ceiling: Decimal, published: Decimal | None, source: str, why: str) -> bool:
        ok = published is not None and published <= ceiling
        return self._add(area, name, ceiling, published, source, f"at most ({why})", ok)

    def unchecked(self, area: str, name: str, published: Any, source: str, why: str) -> None:
        """A published number the truth does not cover: listed, never counted as equal or different."""
        self.rows.append(Row(area, name, "-", _text(published), source, f"unchecked ({why})", None))

    def _add(self, area: str, name: str, truth: Any, published: Any, source: str, rule: str, ok: bool) -> bool:
        self.rows.append(Row(area, name, _text(truth), _text(published), source, rule, bool(ok)))
        return bool(ok)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.ok is False]

    def render(self) -> str:
        head = ("area", "name", "truth", "published", "rule", "ok")
        mark = {True: "yes", False: "NO", None: "-"}
        body = [(r.area, r.name, r.truth, r.published, r.rule, mark[r.ok]) for r in self.rows]
        widths = [min(max(len(str(x)) for x in col), 48) for col in zip(head, *body, strict=True)]
        lines = ["  ".join(str(c)[:w].ljust(w) for c, w in zip(row, widths, strict=True)) for row in (head, *body)]
        checked = [r for r in self.rows if r.ok is not None]
        verdict = "all equal" if not self.failures else f"{len(self.failures)} of {len(checked)} differ"
        extra = (
            f" ({len(self.rows) - len(checked)} more published with no truth to check)"
            if len(checked) < len(self.rows)
            else ""
        )
        return "\n".join([*lines, f"truth against published: {len(checked)} numbers, {verdict}{extra}"])

    def write(self, path: Path, **context: Any) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            **context,
            "numbers": sum(r.ok is not None for r in self.rows),
            "unchecked": sum(r.ok is None for r in self.rows),
            "differ": len(self.failures),
            "verdict": "all equal" if not self.failures else "differences",
            "rows": [asdict(r) for r in self.rows],
        }
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")
        return path


def month_of(period_start: str) -> str:
    """The label of a period (YYYY-MM): the month its BillingPeriodStart falls in, in the bill's own zone. A GCP
    period starts at Pacific midnight (07:00Z or 08:00Z on the 1st), still in that month in UTC."""
    return datetime.fromisoformat(period_start.replace("Z", "+00:00")).strftime("%Y-%m")


def cost_center_truth(truth: dict[str, Any]) -> dict[str, dict[str, Decimal]]:
    """Per month label, per cost center: the exact EffectiveCost the truth gives (summing the label's periods)."""
    found: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for entry in truth["chargeback"]:
        for cc, amounts in entry["cost_centers"].items():
            found[month_of(entry["billing_period_start"])][cc] += Decimal(amounts["effective_cost_exact"])
    return found


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
