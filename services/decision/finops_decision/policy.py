"""The approval policy as data: rules that select decisions by kind, monthly commitment, term and risk, and say
who must approve them, for how long an approval is worth anything, when the decision expires, how often to
remind and when to escalate, and when automation may approve on its own (autopilot guardrails).

A policy is a YAML or JSON document; every version is stored and the newest is in force. Rules are tried in
order of priority (lowest first; ties in document order); the first whose `match` holds applies. When none does,
the built-in `no-rule-matched` rule asks the practitioner, so no decision is ever left without approvers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from finops_contracts.decisions import Requirement
from finops_contracts.money import Amount
from finops_contracts.recommendations import Kind, Persona

Risk = Literal["low", "medium", "high"]
RISKS: tuple[str, ...] = ("low", "medium", "high")


def _ratio(value: object) -> object:
    # A ratio written as 0.9 in YAML arrives as a float; its shortest text is what the author wrote.
    return Decimal(repr(value)) if isinstance(value, float) else value


Ratio = Annotated[Amount, BeforeValidator(_ratio)]


class PolicyError(ValueError):
    """A policy document that cannot be used; the message names the rule or field and what to change."""


class Match(BaseModel):
    """Which decisions a rule applies to. Every criterion given must hold; an empty match takes everything.
    Amount and term criteria hold only for decisions that have an amount and a term (commitments)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kinds: tuple[Kind, ...] = ()
    monthly_commitment_above: Amount | None = None
    """Strictly more than this much per month."""
    monthly_commitment_below: Amount | None = None
    """Strictly less than this much per month."""
    term_months: tuple[int, ...] = ()
    risks: tuple[Risk, ...] = ()
    payments: tuple[Literal["no_upfront", "partial_upfront", "all_upfront"], ...] = ()
    """Commitments paid so (an upfront payment is cash out today: a treasury decision)."""

    @field_validator("kinds")
    @classmethod
    def _decided_kinds(cls, kinds: tuple[Kind, ...]) -> tuple[Kind, ...]:
        if Kind.ANOMALY in kinds:
            raise ValueError("anomalies are not decisions; remove 'anomaly' from kinds")
        return kinds


def _requirement(value: object) -> object:
    return {"persona": value} if isinstance(value, str) else value


class RequirementSpec(BaseModel):
    """`quorum` distinct people of `persona` must approve; engineering approvers must own the decision's team."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    persona: Persona
    quorum: int = Field(default=1, ge=1)


class Autopilot(BaseModel):
    """Automation may approve a commitment tranche costing less than `max_monthly_commitment` a month whose
    covered usage is at most `max_coverage` of the pool's usage (known from the recommendation's evidence)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_monthly_commitment: Amount = Field(gt=0)
    max_coverage: Ratio = Field(gt=0, le=1)


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=80)
    priority: int = 100
    match: Match = Match()
    requirements: tuple[Annotated[RequirementSpec, BeforeValidator(_requirement)], ...] = Field(min_length=1)
    """Who approves; for an autopilot rule, who approves when its guardrails do not hold."""
    approval_validity: timedelta = timedelta(days=7)
    """An approval older than this counts for nothing."""
    expires_after: timedelta = timedelta(days=14)
    """A decision still waiting this long after it was proposed expires."""
    remind_every: timedelta = timedelta(days=1)
    escalate_after_reminders: int = Field(default=3, ge=0)
    """After this many reminders the practitioner is added to the approvers (0: never)."""
    autopilot: Autopilot | None = None

    @field_validator("approval_validity", "expires_after", "remind_every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration, e.g. P7D or PT12H")
        return value

    @model_validator(mode="after")
    def _distinct_personas(self) -> Rule:
        personas = [r.persona for r in self.requirements]
        if len(set(personas)) != len(personas):
            raise ValueError(f"rule {self.name} names a persona twice; raise its quorum instead")
        if self.autopilot is not None and self.match.kinds and self.match.kinds != (Kind.COMMITMENT_PLAN,):
            raise ValueError(f"rule {self.name}: autopilot applies to commitment_plan only; match only that kind")
        return self

    def requirements_for(self, owner_team: str) -> tuple[Requirement, ...]:
        """The contract's requirements, engineering scoped to the owning team."""
        return tuple(
            Requirement(
                persona=r.persona, quorum=r.quorum, team=owner_team if r.persona is Persona.ENGINEERING else None
            )
            for r in self.requirements
        )


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    savings_tolerance: Ratio = Field(default=Decimal("0.9"), gt=0)
    """Savings are verified when realized >= tolerance x estimated, else a shortfall."""
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Policy:
        names = [r.name for r in self.rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique; {', '.join(twice)} appear more than once")
        if FALLBACK.name in names:
            raise ValueError(f"{FALLBACK.name} is the built-in fallback rule's name; call yours something else")
        return self

    def ordered(self) -> list[Rule]:
        return [r for _, _, r in sorted((r.priority, i, r) for i, r in enumerate(self.rules))]

    def rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.name == name:
                return r
        if name == FALLBACK.name:
            return FALLBACK
        raise KeyError(name)


FALLBACK = Rule(name="no-rule-matched", priority=1 << 30, requirements=(RequirementSpec(persona=Persona.PRACTITIONER),))


@dataclass(frozen=True)
class Facts:
    """What the policy judges a decision by."""

    kind: Kind
    monthly_commitment: Decimal | None = None
    term_months: int | None = None
    risk: str = "low"
    coverage: Decimal | None = None
    """The tranche's covered usage / the pool's usage, when the recommendation's evidence tells."""
    payment: str | None = None
    """The commitment's payment option (no_upfront, partial_upfront, all_upfront)."""


def matches(match: Match, facts: Facts) -> bool:
    if match.kinds and facts.kind not in match.kinds:
        return False
    amount = facts.monthly_commitment
    if match.monthly_commitment_above is not None and (amount is None or not amount > match.monthly_commitment_above):
        return False
    if match.monthly_commitment_below is not None and (amount is None or not amount < match.monthly_commitment_below):
        return False
    if match.term_months and facts.term_months not in match.term_months:
        return False
    if match.payments and facts.payment not in match.payments:
        return False
    return not (match.risks and facts.risk not in match.risks)


def select(policy: Policy, facts: Facts) -> Rule:
    """The first rule by priority whose match holds; the practitioner fallback when none does."""
    for rule in policy.ordered():
        if matches(rule.match, facts):
            return rule
    return FALLBACK


@dataclass(frozen=True)
class Verdict:
    rule: Rule
    automatic: bool
    reason: str
    """Why automation did or did not approve (empty when the rule has no autopilot)."""


def autopilot(rule: Rule, facts: Facts) -> tuple[bool, str]:
    """Whether automation may approve under `rule`, and why (not)."""
    guard = rule.autopilot
    if guard is None:
        return False, ""
    if facts.kind is not Kind.COMMITMENT_PLAN or facts.monthly_commitment is None:
        return False, f"autopilot of rule {rule.name} approves commitment tranches only"
    if not facts.monthly_commitment < guard.max_monthly_commitment:
        return False, (
            f"monthly commitment {facts.monthly_commitment} is not under the autopilot limit "
            f"{guard.max_monthly_commitment} of rule {rule.name}"
        )
    if facts.coverage is None:
        return False, f"the pool's usage is unknown, so rule {rule.name} cannot check the coverage guardrail"
    if facts.coverage > guard.max_coverage:
        return False, f"coverage {facts.coverage} exceeds the target {guard.max_coverage} of rule {rule.name}"
    return True, (
        f"rule {rule.name}: monthly commitment {facts.monthly_commitment} under {guard.max_monthly_commitment}, "
        f"coverage {facts.coverage} within {guard.max_coverage}"
    )


def evaluate(policy: Policy, facts: Facts) -> Verdict:
    rule = select(policy, facts)
    automatic, reason = autopilot(rule, facts)
    return Verdict(rule=rule, automatic=automatic, reason=reason)


def parse(text: str, *, content_type: str = "") -> Policy:
    """A policy from a YAML or JSON body; PolicyError naming the field and what is wrong."""
    try:
        if "json" in content_type:
            data: Any = json.loads(text)
        else:
            data = yaml.safe_load(text)  # JSON is YAML too
    except (ValueError, yaml.YAMLError) as exc:
        raise PolicyError(f"the policy is not valid YAML or JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError("the policy must be a mapping with 'rules' (and optionally 'savings_tolerance')")
    data.pop("version", None)  # a document fetched with GET may be sent back as is
    try:
        return Policy.model_validate(data)
    except ValueError as exc:
        raise PolicyError(_explain(exc, data)) from exc


def _explain(exc: ValueError, data: dict[str, Any]) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for err in errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc) or "(policy)"
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            rules = data.get("rules") or []
            name = rules[loc[1]].get("name") if loc[1] < len(rules) and isinstance(rules[loc[1]], dict) else None
            where = f"rule {name or loc[1]}: " + ".".join(str(p) for p in loc[2:])
        parts.append(f"{where}: {err['msg']}")
    return "the policy was not accepted: " + "; ".join(parts)


def default_source() -> str:
    return resources.files("finops_decision").joinpath("default_policy.yaml").read_text()


def default() -> Policy:
    return parse(default_source())


def document(policy: Policy) -> dict[str, Any]:
    """The policy as JSON-ready data (durations as ISO 8601, amounts as decimal strings)."""
    return policy.model_dump(mode="json", exclude_defaults=False)
