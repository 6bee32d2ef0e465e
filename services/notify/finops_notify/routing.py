"""Routing: which event becomes a notification, for which personas, teams and cost centers, how severe, and
which subscribers it reaches.

- a budget alert goes to finance and to the team (or cost center) whose budget it is;
- an anomaly goes to the owning team's engineers and to the practitioner; other recommendations go to the
  personas they name;
- a purchase goes to finance and the practitioner;
- an approval request goes to the approvers its policy names;
- measurements (KPIs, coverage, unit cost, completed periods) only feed the weekly digest.

Rules read the event's JSON payload, so a type the contracts add later routes by its name alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from finops_notify.policy import severity_rank


@dataclass(frozen=True)
class Notification:
    ce_type: str
    title: str
    severity: str
    personas: tuple[str, ...]
    dedup_key: str
    facts: tuple[tuple[str, str], ...] = ()
    teams: tuple[str, ...] = ()
    cost_centers: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    immediate: bool = True
    """False: recorded for the digest and the stream, delivered to no channel on its own."""


@dataclass(frozen=True)
class Subscriber:
    id: str
    name: str
    persona: str
    channel: str
    target: str
    teams: frozenset[str] = frozenset()
    cost_centers: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()
    min_severity: str = "info"
    extra: Mapping[str, Any] = field(default_factory=dict)


def money(value: Mapping[str, Any]) -> str:
    return f"{Decimal(value['amount']):,.2f} {value['currency']}"


def _percent(value: Any) -> str:
    return f"{Decimal(str(value)) * 100:.0f}%"


def _budget(p: Mapping[str, Any]) -> Notification:
    kind, scope = p["scope_kind"], p["scope"]
    period = str(p["billing_period_start"])[:7]
    over = Decimal(p["actual"]["amount"]) >= Decimal(p["budget"]["amount"])
    basis = p["basis"]
    return Notification(
        ce_type="",
        title=f"Budget of {kind} {scope} for {period}: {basis} cost crossed {_percent(p['threshold'])}",
        severity="critical" if over else "warning",
        personas=("finance", "engineering", "business") if kind == "product" else ("finance", "engineering"),
        teams=(scope,) if kind == "team" else (),
        cost_centers=(scope,) if kind == "cost_center" else (),
        dedup_key=f"budget/{kind}/{scope}/{period}/{p['threshold']}/{basis}",
        facts=(
            ("Scope", f"{kind} {scope}"),
            ("Period", period),
            ("Threshold", _percent(p["threshold"])),
            ("Budget", money(p["budget"])),
            ("Actual", money(p["actual"])),
            ("Projected", money(p["projected"])),
        ),
    )


def _recommendation(p: Mapping[str, Any], updated: bool) -> Notification:
    kind = p["kind"]
    team = p["owner_team"]
    if kind == "anomaly":
        personas: tuple[str, ...] = ("engineering", "practitioner")
        severity = "warning"
    else:
        personas = tuple(dict.fromkeys([*p.get("personas", ()), "practitioner"]))
        severity = "info"
    return Notification(
        ce_type="",
        title=("Updated: " if updated else "") + str(p["title"]),
        severity=severity,
        personas=personas,
        teams=(team,),
        dedup_key=f"recommendation/{p['recommendation_id']}/v{p.get('version', 1)}",
        facts=(
            ("Kind", kind),
            ("Target", str(p["target"])),
            ("Owner team", team),
            ("Estimated monthly savings", money(p["estimated_monthly_savings"])),
            ("Expires", str(p["expires_at"])[:10]),
        ),
    )


def _purchase(ce_type: str, p: Mapping[str, Any]) -> Notification:
    failed = "fail" in ce_type
    facts = [(k.replace("_", " ").capitalize(), money(v) if isinstance(v, dict) and "currency" in v else str(v))
             for k, v in p.items() if isinstance(v, str | int | dict) and k != "evidence"]  # fmt: skip
    ref = p.get("decision_id") or p.get("purchase_id") or p.get("recommendation_id") or ""
    return Notification(
        ce_type="",
        title=("Commitment purchase failed" if failed else "Commitment purchased") + (f" ({ref})" if ref else ""),
        severity="critical" if failed else "info",
        personas=("finance", "practitioner"),
        teams=tuple(t for t in [p.get("owner_team")] if t),
        dedup_key=f"{ce_type}/{ref}",
        facts=tuple(facts[:8]),
    )


def _approval(ce_type: str, p: Mapping[str, Any]) -> Notification:
    approvers = tuple(str(a) for a in p.get("approvers", ()))
    ref = p.get("decision_id", "")
    return Notification(
        ce_type="",
        title=f"Approval requested: {p.get('title') or p.get('kind') or ref}",
        severity="warning",
        personas=(),
        approvers=approvers,
        dedup_key=f"approval/{ref}",
        facts=tuple((k, str(p[k])) for k in ("decision_id", "kind", "amount", "proposer", "expires_at") if k in p),
    )


def _digest_only(ce_type: str, subject: str | None, personas: Sequence[str], title: str) -> Notification:
    return Notification(
        ce_type="", title=title, severity="info", personas=tuple(personas), dedup_key=f"{ce_type}/{subject}",
        immediate=False,
    )  # fmt: skip


def route(ce_type: str, subject: str | None, p: Mapping[str, Any]) -> Notification | None:
    """The notification an event becomes, or None when nobody needs to hear of it."""
    n: Notification | None
    match ce_type.split("."):
        case ["finops", "allocation", "budget_alerted", _]:
            n = _budget(p)
        case ["finops", "recommendation", ("issued" | "updated") as what, _]:
            n = _recommendation(p, updated=what == "updated")
        case ["finops", "decision", "approval_requested", _]:
            n = _approval(ce_type, p)
        case ["finops", "purchase", _, _] | ["finops", "decision", "purchase_requested", _]:
            n = _purchase(ce_type, p)
        case ["finops", "allocation", "journal_exported", _]:
            n = Notification(
                ce_type="",
                title=f"Journal for {str(p['billing_period_start'])[:7]} exported ({p['entity']})",
                severity="info",
                personas=("finance",),
                dedup_key=f"journal/{p['journal_id']}",
                facts=(("Lines", str(p["line_count"])), *((f"Debits {d['currency']}", money(d)) for d in p["debits"])),
            )
        case ["finops", "ingest", "rejected", _]:
            n = Notification(
                ce_type="",
                title=f"Billing file {p['file_name']} was rejected",
                severity="warning",
                personas=("engineering", "practitioner"),
                dedup_key=f"ingest/{p['ingest_id']}",
                facts=tuple((e["rule"], e["hint"]) for e in p.get("errors", ())[:5]),
            )
        case ["finops", "recommendation", "kpi_measured", _]:
            n = _digest_only(ce_type, subject, ("finance", "practitioner"), f"Commitment KPIs of {subject}")
        case ["finops", "allocation", ("coverage_measured" | "unit_cost_reported"), _]:
            n = _digest_only(ce_type, subject, ("finance", "practitioner", "business"), f"{ce_type} {subject}")
        case ["finops", "cost", "period_completed", _]:
            n = _digest_only(ce_type, subject, ("finance", "practitioner"), f"Billing period {subject} completed")
        case _:
            n = None
    if n is None:
        return None
    return Notification(**{**n.__dict__, "ce_type": ce_type})


ROUTED = frozenset(
    {"budget_alerted", "issued", "updated", "approval_requested", "purchase_requested", "journal_exported",
     "rejected", "kpi_measured", "coverage_measured", "unit_cost_reported", "period_completed"}
)  # fmt: skip


def routed(ce_type: str) -> bool:
    """Whether `route` can turn events of this type into notifications (others are not even decoded)."""
    parts = ce_type.split(".")
    return len(parts) == 4 and (parts[2] in ROUTED or parts[1] == "purchase")


def type_selected(ce_type: str, selected: frozenset[str]) -> bool:
    return not selected or ce_type in selected or any(s.endswith("*") and ce_type.startswith(s[:-1]) for s in selected)


def matches(s: Subscriber, n: Notification) -> bool:
    """Whether subscriber `s` should hear of `n`."""
    if not type_selected(n.ce_type, s.event_types) or severity_rank(n.severity) < severity_rank(s.min_severity):
        return False
    if n.approvers:
        return s.name in n.approvers or s.id in n.approvers
    if s.persona not in n.personas:
        return False
    if s.persona == "engineering" and not (s.teams & set(n.teams)):
        return False  # engineers hear about their own teams only
    if s.teams and not (s.teams & set(n.teams)) and s.persona != "engineering":
        return False
    return not (s.cost_centers and not (s.cost_centers & set(n.cost_centers)))
