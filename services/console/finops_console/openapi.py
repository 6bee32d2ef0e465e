"""The OpenAPI 3.1 document of the console's public query API, with response schemas from pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from finops_console import costs
from finops_console.queries import DECISION_STATES, RECOMMENDATION_STATUSES


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(_Model):
    error: str


class Money(_Model):
    amount: str
    currency: str


class Me(_Model):
    name: str
    role: str
    teams: list[str]
    products: list[str]
    scope: dict[str, list[str]] | None


class CostRow(BaseModel):
    """One group: the group_by dimensions named in the request (billing_account, provider, service, team,
    cost_center, product, period, day), then currency and the sums."""

    model_config = ConfigDict(extra="allow")
    currency: str
    billed_cost: str
    effective_cost: str
    line_count: int


class CostPage(_Model):
    items: list[CostRow]
    next_cursor: str | None


class AllocationRow(_Model):
    period: str
    billing_account: str
    owner: str
    currency: str
    billed_cost: str
    effective_cost: str
    line_count: int


class AllocationPage(_Model):
    items: list[AllocationRow]
    next_cursor: str | None


class Recommendation(_Model):
    recommendation_id: str
    kind: str
    target: str
    title: str
    owner_team: str
    personas: list[str]
    estimated_monthly_savings: Money | None
    status: str
    version: int
    billing_account: str | None
    provider: str | None
    resource_id: str | None
    expires_at: str | None
    issued_at: str | None
    updated_at: str
    superseded_by: str | None
    reason: str | None


class RecommendationPage(_Model):
    items: list[Recommendation]
    next_cursor: str | None


class Decision(_Model):
    decision_id: str
    recommendation_id: str | None
    kind: str | None
    owner_team: str | None
    state: str
    title: str | None
    proposer: str | None
    estimated_monthly_savings: Money | None
    monthly_commitment: Money | None
    term_months: int | None
    risk: str | None
    provider: str | None
    billing_account: str | None
    commitment_id: str | None
    realized_savings: Money | None
    estimated_window_savings: Money | None
    realization: str | None
    stages: dict[str, str | None]
    updated_at: str


class DecisionPage(_Model):
    items: list[Decision]
    next_cursor: str | None


class HistoryEntry(_Model):
    event_id: str
    type: str
    state: str | None
    at: str
    actor: str | None
    summary: str
    payload: dict[str, Any]


class DecisionDetail(Decision):
    recommendation: Recommendation | None
    history: list[HistoryEntry]


class Stage(_Model):
    stage: Literal["recommended", "approved", "purchased", "savings_verified"]
    count: int
    amounts: list[Money]


class CostChanges(_Model):
    """Open anomalies: a change in cost per month, counted apart from the savings on offer."""

    label: str
    count: int
    amounts: list[Money]


class Funnel(_Model):
    stages: list[Stage]
    """"recommended" counts open savings recommendations only (no anomalies, nothing superseded or expired)."""
    lead_times_seconds: dict[str, float | None]
    estimated_savings_of_verified: list[Money]
    outcomes: dict[str, int]
    cost_changes: CostChanges


class Kpis(_Model):
    period: str | None
    commitments: dict[str, Any]
    coverage: list[dict[str, Any]]
    budgets: list[dict[str, Any]]
    unit_costs: list[dict[str, Any]]
    savings: list[dict[str, Any]]


class Journal(_Model):
    journal_id: str
    period: str
    entity: str
    closed_by: str
    line_count: int
    debits: list[Money]
    csv_url: str
    json_url: str
    exported_at: str


class Pipeline(_Model):
    sampled_at: float | None
    window_seconds: float | None = None
    topics: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    error: str | None
    ingest_runs: list[dict[str, Any]]
    consumed: list[dict[str, Any]]


MODELS = (
    Error, Me, CostPage, AllocationPage, RecommendationPage, DecisionPage, DecisionDetail, Funnel, Kpis, Journal,
    Pipeline,
)  # fmt: skip


def _list(name: str, description: str, *, enum: tuple[str, ...] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "string",
        "minLength": 1,
        "pattern": r"^[^,\x00-\x1f]+(,[^,\x00-\x1f]+)*$",
        "description": "one value, or several separated by commas",
    }
    if enum:
        schema["pattern"] = f"^({'|'.join(enum)})(,({'|'.join(enum)}))*$"
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_MONTH = {"type": "string", "pattern": r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$"}
_PAGING = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "page size",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "next_cursor of the previous page, as is",
        "schema": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$"},
    },
]


def _ok(model: type[BaseModel], *, array: bool = False) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    schema = {"type": "array", "items": ref} if array else ref
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "a parameter is wrong; the error says which",
        401: "no valid token or session",
        403: "the role may not read this",
        404: "no such item in your scope",
    }
    return {
        str(c): {
            "description": text[c],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for c in codes
    }


def _get(summary: str, roles: str, params: list[dict[str, Any]], ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "description": f"Roles: {roles}.",
            "parameters": params,
            "responses": {"200": ok, **_errors(401, 403, *codes)},
        }
    }


def document() -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(m, "serialization") for m in MODELS], ref_template="#/components/schemas/{model}"
    )
    schemas = definitions["$defs"]
    dims = costs.DIMENSIONS
    filters = [_list(d, f"only these {d.replace('_', ' ')} values") for d in dims if d not in ("period", "day")]
    readers = "engineering (its teams), business (its products), finance, practitioner, automation, admin"
    paths = {
        "/v1/me": _get("Who the token or session is, and the scope it sees", readers, [], _ok(Me)),
        "/v1/costs": _get(
            "Cost grouped by dimensions and currency (newest complete version of each billing period)",
            readers,
            [
                _list("group_by", "dimensions to group by", enum=dims),
                *filters,
                _list("currency", "only these currencies"),
                {"name": "period", "in": "query", "required": False, "schema": _MONTH},
                {"name": "period_from", "in": "query", "required": False, "schema": _MONTH},
                {"name": "period_to", "in": "query", "required": False, "schema": _MONTH},
                {"name": "sort", "in": "query", "required": False, "schema": {"enum": ["key", "cost"]}},
                *_PAGING,
            ],
            _ok(CostPage),
            400,
        ),
        "/v1/allocations": _get(
            "Allocated cost per owner, billing account, period and currency",
            readers,
            [
                {"name": "period", "in": "query", "required": False, "schema": _MONTH},
                _list("owner", "only these owners"),
                _list("billing_account", "only these billing accounts"),
                *_PAGING,
            ],
            _ok(AllocationPage),
            400,
        ),
        "/v1/recommendations": _get(
            "Recommendations, largest estimated savings first",
            readers,
            [
                {"name": "status", "in": "query", "required": False, "schema": {"enum": list(RECOMMENDATION_STATUSES)}},
                _list("kind", "only these kinds"),
                _list("team", "only these owner teams"),
                *_PAGING,
            ],
            _ok(RecommendationPage),
            400,
        ),
        "/v1/decisions": _get(
            "Decisions, most recently changed first",
            readers,
            [
                _list("state", "only these states", enum=DECISION_STATES),
                _list("kind", "only these kinds"),
                _list("team", "only these owner teams"),
                *_PAGING,
            ],
            _ok(DecisionPage),
            400,
        ),
        "/v1/decisions/{decision_id}": _get(
            "One decision with its history and audit trail",
            readers,
            [
                {
                    "name": "decision_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                }
            ],
            _ok(DecisionDetail),
            400,
            404,
        ),
        "/v1/funnel": _get(
            "Decision flow: recommended, approved, purchased, savings verified; money and lead times",
            readers,
            [_list("kind", "only these kinds")],
            _ok(Funnel),
            400,
        ),
        "/v1/kpis": _get(
            "Shared KPIs: ESR, coverage, utilization; tag and allocation coverage; budgets; unit costs; savings",
            readers,
            [{"name": "period", "in": "query", "required": False, "schema": _MONTH}],
            _ok(Kpis),
            400,
        ),
        "/v1/journals": _get(
            "General-ledger journals exported at period close",
            "finance, practitioner, automation, admin",
            [],
            _ok(Journal, array=True),
        ),
        "/v1/pipeline": _get(
            "Pipeline health: events per second per topic, consumer lag per group, dead letters, ingest runs",
            "finance, practitioner, automation, admin",
            [],
            _ok(Pipeline),
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "finops console query API",
            "version": "1.0.0",
            "description": "Read-only views of the platform's events for teams: costs, allocations, recommendations "
            "and decisions, with filters and cursor pagination, in the caller's persona scope. Money is a decimal "
            "string with its currency. The AsyncAPI document of every event is at /asyncapi.json.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "description": "an API token (POST /v1/tokens)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "finops_session"},
            },
        },
        "security": [{"token": []}, {"session": []}],
    }
