"""Routing: which event becomes a notification, for which personas, teams and cost centers, how severe, and
which subscribers it reaches.

- a budget alert goes to finance and to the team (or cost center) whose budget it is;
- an anomaly goes to the owning team's engineers and to the practitioner; other recommendations go to the
  personas they name;
- an approval request goes to the approvers its policy names: the personas of its requirements (engineering
  only of the team the requirement names) and the people it names in `approvers`;
- a decision taken (approved, rejected, expired) goes to the practitioner and the owning team's engineers, and to
  finance too for a commitment;
- a purchase (commitment purchased, purchase failed) goes to finance and the practitioner, and so do savings
  verified or short of the estimate;
- measurements (KPIs, coverage, unit cost, completed periods) and purchase requests only feed the stream and the
  weekly digest.

Rules read the event's JSON payload (field names as in finops_contracts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from finops_contracts.periods import period_label
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


def period_name(value: Any) -> str:
    """A payload's BillingPeriodStart as its period's name (finops_contracts.periods): 2026-03-01T00:00+09:00,
    sent as 2026-02-28T15:00:00Z, is 2026-03."""
    try:
        return period_label(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return str(value)[:7]


def _percent(value: Any) -> str:
    return f"{Decimal(str(value)) * 100:.0f}%"


def _budget(p: Mapping[str, Any]) -> Notification:
    kind, scope = p["scope_kind"], p["scope"]
    period = period_name(p["billing_period_start"])
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


def _money_facts(p: Mapping[str, Any], fields: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """(label, text) of the fields present: money as amount and currency, dates as the date."""
    out = []
    for key, label in fields:
        value = p.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, dict) and "currency" in value:
            out.append((label, money(value)))
        elif key.endswith(("_at", "start", "end")) and isinstance(value, str):
            out.append((label, value[:10]))
        else:
            out.append((label, str(value)))
    return tuple(out)


def _purchase(ce_type: str, p: Mapping[str, Any]) -> Notification:
    """CommitmentPurchased or PurchaseFailed (finops.purchase.v1)."""
    failed = ce_type.split(".")[2] == "failed"
    dry = " (dry run)" if p.get("dry_run") else ""
    if failed:
        title = f"Commitment purchase failed{dry}: {p.get('reason', '')}"
    else:
        title = f"Commitment purchased{dry}: {p.get('program')} for {p.get('term_months')} months"
    return Notification(
        ce_type="",
        title=title,
        severity="critical" if failed else "info",
        personas=("finance", "practitioner"),
        dedup_key=f"{ce_type}/{p.get('decision_id')}",
        facts=_money_facts(
            p,
            (
                ("decision_id", "Decision"),
                ("provider_name", "Provider"),
                ("commitment_id", "Commitment"),
                ("program", "Program"),
                ("term_months", "Term (months)"),
                ("payment", "Payment"),
                ("commitment_per_hour", "Commitment per hour"),
                ("upfront", "Upfront"),
                ("start", "Start"),
                ("end", "End"),
                ("reason", "Reason"),
                ("attempts", "Attempts"),
                ("dry_run", "Dry run"),
            ),
        ),
    )


def _requirement_text(r: Mapping[str, Any]) -> str:
    team = f" of team {r['team']}" if r.get("team") else ""
    return f"{r.get('quorum', 1)} {r['persona']}{team}"


def _approval(ce_type: str, p: Mapping[str, Any]) -> Notification:
    """ApprovalRequested: the personas its requirements name (engineering scoped to the requirement's team, else
    the owning team) and the people named in `approvers`."""
    requirements = list(p.get("requirements", ()))
    approvers = tuple(str(a) for a in p.get("approvers", ()))
    engineering = [str(r.get("team") or p["owner_team"]) for r in requirements if r["persona"] == "engineering"]
    reminder = int(p.get("reminder", 0))
    return Notification(
        ce_type="",
        title=("Reminder: " if reminder else "") + f"Approval requested: {p['title']}",
        severity="warning",
        personas=tuple(dict.fromkeys(str(r["persona"]) for r in requirements)),
        teams=tuple(dict.fromkeys(engineering)) or (str(p["owner_team"]),),
        approvers=approvers,
        dedup_key=f"approval/{p['decision_id']}/{reminder}",
        facts=(
            *_money_facts(
                p,
                (
                    ("decision_id", "Decision"),
                    ("kind", "Kind"),
                    ("owner_team", "Owner team"),
                    ("estimated_monthly_savings", "Estimated monthly savings"),
                    ("monthly_commitment", "Monthly commitment"),
                    ("due_at", "Due"),
                    ("policy_rule", "Policy rule"),
                ),
            ),
            ("Needs", ", ".join(_requirement_text(r) for r in requirements) or "-"),
            *((("Approvers", ", ".join(approvers)),) if approvers else ()),
        ),
    )


def _decided(ce_type: str, p: Mapping[str, Any]) -> Notification:
    """DecisionApproved, DecisionRejected or DecisionExpired."""
    what = ce_type.split(".")[2]
    personas = ("practitioner", "engineering") + (("finance",) if p.get("kind") == "commitment_plan" else ())
    detail = {
        "approved": "automatically" if p.get("automatic") else f"by {len(p.get('approvals', ()))} approval(s)",
        "rejected": f"by {p.get('principal')}" + (f": {p['comment']}" if p.get("comment") else ""),
        "expired": str(p.get("reason", "")),
    }[what]
    return Notification(
        ce_type="",
        title=f"Decision {what} ({p.get('kind')}, team {p['owner_team']}): {detail}",
        severity="warning" if what == "expired" else "info",
        personas=personas,
        teams=(str(p["owner_team"]),),
        dedup_key=f"decision/{p['decision_id']}/{what}",
        facts=_money_facts(
            p,
            (
                ("decision_id", "Decision"),
                ("recommendation_id", "Recommendation"),
                ("kind", "Kind"),
                ("owner_team", "Owner team"),
                ("state", "State"),
                ("policy_rule", "Policy rule"),
                ("principal", "By"),
                ("comment", "Comment"),
                ("reason", "Reason"),
            ),
        ),
    )


def _savings(ce_type: str, p: Mapping[str, Any]) -> Notification:
    """SavingsVerified or SavingsShortfall: what the bill shows against the estimate."""
    short = ce_type.split(".")[2] == "savings_shortfall"
    realized = money(p["realized_savings"])
    estimated = money(p["estimated_savings"])
    title = (
        f"Savings short of the estimate: {realized} of {estimated} ({_percent(p['realization'])})"
        if short
        else f"Savings verified: {realized} of {estimated} ({_percent(p['realization'])})"
    )
    return Notification(
        ce_type="",
        title=title,
        severity="warning" if short else "info",
        personas=("finance", "practitioner"),
        teams=(str(p["owner_team"]),),
        dedup_key=f"{ce_type}/{p['decision_id']}/{p['window_start']}",
        facts=_money_facts(
            p,
            (
                ("decision_id", "Decision"),
                ("commitment_id", "Commitment"),
                ("owner_team", "Owner team"),
                ("window_start", "From"),
                ("window_end", "To"),
                ("estimated_savings", "Estimated savings"),
                ("realized_savings", "Realized savings"),
                ("realization", "Realization"),
                ("lines_matched", "Cost lines matched"),
                ("reason", "Reason"),
            ),
        ),
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
        case ["finops", "decision", ("approved" | "rejected" | "expired"), _]:
            n = _decided(ce_type, p)
        case ["finops", "decision", ("savings_verified" | "savings_shortfall"), _]:
            n = _savings(ce_type, p)
        case ["finops", "purchase", ("commitment_purchased" | "failed"), _]:
            n = _purchase(ce_type, p)
        case ["finops", "decision", "purchase_requested", _]:
            n = _digest_only(
                ce_type, subject, ("finance", "practitioner"),
                f"Commitment purchase requested ({p.get('provider_name')}, decision {p.get('decision_id')})",
            )  # fmt: skip
        case ["finops", "allocation", "journal_exported", _]:
            n = Notification(
                ce_type="",
                title=f"Journal for {period_name(p['billing_period_start'])} exported ({p['entity']})",
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
    {"allocation.budget_alerted", "recommendation.issued", "recommendation.updated", "decision.approval_requested",
     "decision.approved", "decision.rejected", "decision.expired", "decision.purchase_requested",
     "decision.savings_verified", "decision.savings_shortfall", "purchase.commitment_purchased", "purchase.failed",
     "allocation.journal_exported", "ingest.rejected", "recommendation.kpi_measured", "allocation.coverage_measured",
     "allocation.unit_cost_reported", "cost.period_completed"}
)  # fmt: skip


def routed(ce_type: str) -> bool:
    """Whether `route` can turn events of this type into notifications (others are not even decoded)."""
    parts = ce_type.split(".")
    return len(parts) == 4 and parts[0] == "finops" and f"{parts[1]}.{parts[2]}" in ROUTED


def type_selected(ce_type: str, selected: frozenset[str]) -> bool:
    return not selected or ce_type in selected or any(s.endswith("*") and ce_type.startswith(s[:-1]) for s in selected)


def matches(s: Subscriber, n: Notification) -> bool:
    """Whether subscriber `s` should hear of `n`."""
    if not type_selected(n.ce_type, s.event_types) or severity_rank(n.severity) < severity_rank(s.min_severity):
        return False
    if n.approvers and (s.name in n.approvers or s.id in n.approvers):
        return True  # a person the approval policy names, whatever their persona or team
    if s.persona not in n.personas:
        return False
    if s.persona == "engineering" and not (s.teams & set(n.teams)):
        return False  # engineers hear about their own teams only
    if s.teams and not (s.teams & set(n.teams)) and s.persona != "engineering":
        return False
    return not (s.cost_centers and not (s.cost_centers & set(n.cost_centers)))
