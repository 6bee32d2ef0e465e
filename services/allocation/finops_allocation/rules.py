"""Allocation rules as data: which cost center, team, product and environment a cost belongs to.

A rule matches on FOCUS dimensions, tags and virtual tags (every condition must hold), and assigns dimensions,
virtual tags, or a shared pool. Rules run in priority order (lower first, then by name); for each dimension the
first rule that assigns it wins, and a virtual tag set by a rule can be matched by the rules after it. What no
rule assigns comes from the tag of the same name (after key aliases), else it is "unallocated", which stays
visible as its own line. A cost matched by a pool rule is split later over the pool's targets.

Rules are evaluated once per *facet*: the distinct combination of the dimensions rules can see. A bill has few
facets and many lines, so allocating ten million lines means evaluating the rules some thousands of times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from finops_allocation.splits import SplitMethod

DIMENSIONS = ("cost_center", "team", "product", "environment")
UNALLOCATED = "unallocated"
FACET_FIELDS = (
    "billing_account_id",
    "sub_account_id",
    "provider_name",
    "service_name",
    "service_category",
    "region_id",
    "charge_category",
    "pricing_category",
    "commitment_discount_status",
)
"""The cost-line columns rules can match on, besides tags."""
DEFAULT_ALIASES: dict[str, tuple[str, ...]] = {
    "team": ("team", "owner-team", "owner_team", "ownerteam", "squad"),
    "cost_center": ("cost_center", "cost-center", "costcenter", "cost center", "cc"),
    "product": ("product", "application", "app"),
    "environment": ("environment", "env", "stage"),
}
_TEMPLATE = re.compile(r"\{([a-z_]+(?::[^{}]+)?)\}")


class Condition(BaseModel):
    """One test on a facet: `field` is a FOCUS dimension (see FACET_FIELDS) or `tag:<key>`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    op: Literal["eq", "in", "prefix", "regex", "exists", "absent"] = "eq"
    value: str | list[str] | None = None

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if value not in FACET_FIELDS and not value.startswith("tag:"):
            raise ValueError(f"unknown field {value!r}: use one of {', '.join(FACET_FIELDS)} or tag:<key>")
        return value

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op in ("exists", "absent"):
            return self
        if self.value is None:
            raise ValueError(f"op {self.op} needs a value")
        if self.op == "in" and not isinstance(self.value, list):
            raise ValueError("op in needs a list of values")
        if self.op != "in" and not isinstance(self.value, str):
            raise ValueError(f"op {self.op} needs one text value")
        if self.op == "regex":
            try:
                re.compile(self.value)  # type: ignore[arg-type]
            except re.error as exc:
                raise ValueError(f"invalid regex {self.value!r}: {exc}") from None
        return self

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.value) if self.op == "regex" else None  # type: ignore[arg-type]

    def holds(self, facet: Mapping[str, str | None]) -> bool:
        actual = facet.get(self.field)
        if self.op == "exists":
            return bool(actual)
        if self.op == "absent":
            return not actual
        if actual is None:
            return False
        if self.op == "eq":
            return actual == self.value
        if self.op == "in":
            return actual in self.value  # type: ignore[operator]
        if self.op == "prefix":
            return actual.startswith(self.value)  # type: ignore[arg-type]
        return self._pattern.search(actual) is not None  # type: ignore[union-attr]


class Rule(BaseModel):
    """Match all `match` conditions, then assign dimensions and virtual tags, or send the cost to `pool`.
    Assigned values may name other fields: `"{tag:team}"`, `"{service_name}"`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    priority: int = 100
    match: tuple[Condition, ...] = ()
    assign: dict[str, str] = Field(default_factory=dict)
    pool: str | None = None

    @model_validator(mode="after")
    def _does_something(self) -> Rule:
        if not self.assign and self.pool is None:
            raise ValueError(f"rule {self.name!r} assigns nothing and names no pool")
        for key in self.assign:
            if key not in DIMENSIONS and not key.startswith("tag:"):
                raise ValueError(
                    f"rule {self.name!r} assigns {key!r}: use one of {', '.join(DIMENSIONS)} or tag:<name> "
                    "for a virtual tag"
                )
        return self


class Pool(BaseModel):
    """A shared cost pool and how it is split over the values of one dimension (`by`, teams by default):
    `even` over `targets`; `proportional` to the direct cost of `targets` (all direct values when empty);
    `fixed` by `percentages` (summing to 100); `usage` by a usage metric per target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    method: SplitMethod
    by: Literal["cost_center", "team", "product", "environment"] = "team"
    targets: tuple[str, ...] = ()
    percentages: dict[str, Decimal] = Field(default_factory=dict)
    usage: dict[str, Decimal] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> Pool:
        if self.method is SplitMethod.EVEN and not self.targets:
            raise ValueError(f"pool {self.name!r}: an even split needs targets")
        if self.method is SplitMethod.FIXED and sum(self.percentages.values()) != 100:
            raise ValueError(f"pool {self.name!r}: percentages sum to {sum(self.percentages.values())}, not 100")
        if self.method is SplitMethod.USAGE and not self.usage:
            raise ValueError(f"pool {self.name!r}: a usage split needs usage per target")
        return self


class RuleSet(BaseModel):
    """An ordered set of rules with the tag normalization they rely on, and the shared pools they feed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[Rule, ...] = ()
    pools: tuple[Pool, ...] = ()
    tag_aliases: dict[str, tuple[str, ...]] = Field(default_factory=lambda: dict(DEFAULT_ALIASES))
    lowercase_values: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        names = [r.name for r in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(duplicates)}")
        pools = {p.name for p in self.pools}
        for rule in self.rules:
            if rule.pool is not None and rule.pool not in pools:
                raise ValueError(f"rule {rule.name!r} sends cost to pool {rule.pool!r}, which is not defined")
        return self

    @cached_property
    def _index(self) -> tuple[dict[tuple[str, object], list[int]], list[int], list[int]]:
        """Rules by their `eq` conditions (on dimensions and real tags), so that a facet is only tested against
        rules whose every such condition it meets. Rules with none are always tested."""
        virtual = {key for rule in self.rules for key in rule.assign if key.startswith("tag:")}
        indexed: dict[tuple[str, object], list[int]] = {}
        needed: list[int] = []
        always: list[int] = []
        for i, rule in enumerate(self.ordered):
            keys = {(c.field, c.value) for c in rule.match if c.op == "eq" and c.field not in virtual}
            needed.append(len(keys))
            if not keys:
                always.append(i)
            for key in keys:
                indexed.setdefault(key, []).append(i)
        return indexed, needed, always

    def candidates(self, view: Mapping[str, str | None]) -> list[Rule]:
        """The rules that may match a facet, in priority order."""
        indexed, needed, always = self._index
        hits: dict[int, int] = dict.fromkeys(always, 0)
        for field, value in view.items():
            for i in indexed.get((field, value), ()):
                hits[i] = hits.get(i, 0) + 1
        return [self.ordered[i] for i in sorted(hits) if hits[i] == needed[i]]

    def pool(self, name: str) -> Pool:
        return next(p for p in self.pools if p.name == name)

    @cached_property
    def ordered(self) -> tuple[Rule, ...]:
        return tuple(sorted(self.rules, key=lambda r: (r.priority, r.name)))

    @cached_property
    def _alias_of(self) -> dict[str, str]:
        table = {}
        for canonical, aliases in self.tag_aliases.items():
            for alias in (canonical, *aliases):
                table[_key(alias)] = canonical
        return table

    def normalize_tags(self, tags: Mapping[str, str]) -> dict[str, str]:
        """Keys lower-cased, trimmed and mapped through the aliases; values trimmed (and lower-cased if asked).
        When two keys map to one name, the canonical spelling wins, then the first."""
        out: dict[str, str] = {}
        exact: set[str] = set()
        for key, value in tags.items():
            name = self._alias_of.get(_key(key), _key(key))
            cleaned = " ".join(str(value).split())
            cleaned = cleaned.lower() if self.lowercase_values else cleaned
            if not cleaned:
                continue
            is_exact = _key(key) == name
            if name not in out or (is_exact and name not in exact):
                out[name] = cleaned
                if is_exact:
                    exact.add(name)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=False), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> RuleSet:
        """Raises ValueError naming what is wrong (YAML syntax with its line, or the rule and field)."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"rules are not valid YAML: {exc}") from None
        return cls.model_validate(data or {})


def _key(text: str) -> str:
    return " ".join(text.strip().lower().replace("_", " ").replace("-", " ").split()).replace(" ", "_")


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where a facet's cost goes: four dimensions, or a pool, and the rule that decided each."""

    cost_center: str
    team: str
    product: str
    environment: str
    pool: str | None = None
    decided_by: tuple[tuple[str, str], ...] = ()

    def dimensions(self) -> tuple[str, str, str, str]:
        return (self.cost_center, self.team, self.product, self.environment)


def assign(facet: Mapping[str, str | None], tags: Mapping[str, str], ruleset: RuleSet) -> Assignment:
    """The assignment of one facet (its FACET_FIELDS values) with its tags."""
    view: dict[str, str | None] = dict(facet)
    for key, value in ruleset.normalize_tags(tags).items():
        view[f"tag:{key}"] = value
    chosen: dict[str, str] = {}
    decided: dict[str, str] = {}
    pool = None
    for rule in ruleset.candidates(view):
        if not all(c.holds(view) for c in rule.match):
            continue
        if rule.pool is not None and pool is None:
            pool = rule.pool
            decided["pool"] = rule.name
        for key, template in rule.assign.items():
            value = _render(template, view)
            if not value:
                continue
            if key.startswith("tag:"):
                if key not in view or view[key] is None:
                    view[key] = value  # a virtual tag: later rules can match it
                    decided[key] = rule.name
            elif key not in chosen:
                chosen[key] = value
                decided[key] = rule.name
    for dimension in DIMENSIONS:
        if dimension not in chosen:
            chosen[dimension] = view.get(f"tag:{dimension}") or UNALLOCATED
    return Assignment(
        cost_center=chosen["cost_center"],
        team=chosen["team"],
        product=chosen["product"],
        environment=chosen["environment"],
        pool=pool,
        decided_by=tuple(sorted(decided.items())),
    )


@dataclass(frozen=True, slots=True)
class Owner:
    """Who owns a cost: its team, the cost center when a rule gave one, and what decided the team
    ("rule:<name>", "tag:team" or "unallocated")."""

    team: str
    cost_center: str | None
    decided_by: str


def owner_of(facet: Mapping[str, str | None], tags: Mapping[str, str], ruleset: RuleSet) -> Owner:
    """The one definition of a cost's owner: the first rule (in priority order) that assigns a team, else the
    team tag (any case, trimmed, and through the rule set's key aliases: Team, owner-team, squad...), else
    "unallocated". Every owner in this platform comes from here (other services learn it from ResourceOwned)."""
    return owner_from(assign(facet, tags, ruleset))


def owner_from(assignment: Assignment) -> Owner:
    """The owner part of an assignment (see owner_of)."""
    decided = dict(assignment.decided_by)
    if "team" in decided:
        by = f"rule:{decided['team']}"
    elif assignment.team != UNALLOCATED:
        by = "tag:team"
    else:
        by = UNALLOCATED
    cost_center = assignment.cost_center if "cost_center" in decided else None
    return Owner(team=assignment.team, cost_center=cost_center, decided_by=by)


def _render(template: str, view: Mapping[str, str | None]) -> str:
    return _TEMPLATE.sub(lambda m: view.get(m.group(1)) or "", template).strip()
