"""The decision HTTP API. Every request is written to the audit log with its method, path, principal and status
(401s and 403s included), in the same transaction as what it changed; a refused action leaves only its audit
rows behind.

| endpoint | who | what |
|---|---|---|
| GET /v1/decisions?state=&kind=&team=&limit=&cursor= | everyone (engineering: own teams) | newest first, cursor pages |
| POST /v1/decisions | engineering, finance, business, practitioner | a person proposes (then never approves it) |
| GET /v1/decisions/waiting | the four personas | what the caller's persona or delegations can approve now |
| GET /v1/decisions/{id}, /v1/decisions/{id}/history | everyone in scope | the decision; transitions, approvals, audit |
| POST /v1/decisions/{id}/approve, /reject {"comment"} | the personas the decision needs | 403 not yours, 409 state |
| GET, PUT /v1/policy | GET everyone; PUT practitioner, admin | the approval policy, YAML or JSON; every version kept |
| POST, GET /v1/delegations | the four personas | delegate your persona's approvals until a time |
| GET /v1/audit?after=&decision_id= | practitioner, admin | the audit log with its hashes |
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pydantic
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from finops_contracts.decisions import DecisionState
from finops_contracts.money import Money
from finops_contracts.recommendations import CommitmentPurchase, Kind, Persona
from finops_decision import approvals, audit, guard, policy, proposals, repository, service, states
from finops_decision.approvals import APPROVER_ROLES, Actor, Refused
from finops_decision.repository import Decision
from finops_decision.service import NotFound, Trail
from finops_runtime.access import Denied, Principal, Role, authenticate
from finops_runtime.app import ServiceRuntime

log = logging.getLogger(__name__)

EVERYONE = frozenset(Role)
POLICY_EDITORS = frozenset({Role.PRACTITIONER, Role.ADMIN})
AUDITORS = frozenset({Role.PRACTITIONER, Role.ADMIN})
YAML = "application/yaml"
MAX_PAGE = 200


class BadRequest(ValueError):
    """The request itself is wrong; the message says what to send instead."""


def problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _now() -> datetime:
    return datetime.now(UTC)


def _money(amount: Decimal | None, currency: str) -> dict[str, str] | None:
    return None if amount is None else {"amount": format(amount, "f"), "currency": currency}


def view(d: Decision, now: datetime) -> dict[str, Any]:
    case = d.case()
    counted = {id(g) for g in approvals.counting(d.approvals, validity=d.rule.approval_validity, now=now)}
    return {
        "id": str(d.id),
        "recommendation_id": str(d.recommendation_id),
        "tranche": d.tranche,
        "kind": d.kind.value,
        "title": d.title,
        "owner_team": d.owner_team,
        "proposer": d.proposer,
        "state": d.state.value,
        "estimated_monthly_savings": _money(d.estimated_monthly_savings, d.currency),
        "monthly_commitment": _money(d.monthly_commitment, d.currency),
        "term_months": d.term_months,
        "risk": d.risk,
        "coverage": format(d.coverage, "f") if d.coverage is not None else None,
        "billing_account_id": d.billing_account_id,
        "provider_name": d.provider_name,
        "purchase": d.purchase.model_dump(mode="json") if d.purchase else None,
        "policy": {
            "version": d.policy_version,
            "rule": d.policy_rule,
            "approval_validity": d.rule.model_dump(mode="json")["approval_validity"],
        },
        "requirements": [
            {"persona": r.persona.value, "quorum": r.quorum, "team": r.team, "missing": lacking}
            for r, lacking in approvals.missing(case, now)
        ],
        "approvals": [
            {
                "principal": g.principal,
                "persona": g.persona.value if g.persona else None,
                "on_behalf_of": g.on_behalf_of,
                "comment": g.comment,
                "rule": g.rule,
                "at": g.at.isoformat(),
                "counts": id(g) in counted or g.persona is None,
            }
            for g in d.approvals
        ],
        "round": d.round,
        "reminders": d.reminders,
        "due_at": d.due_at.isoformat() if d.due_at else None,
        "proposed_at": d.proposed_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
        "approved_at": d.approved_at.isoformat() if d.approved_at else None,
        "automatic": d.automatic,
        "commitment_id": d.commitment_id,
        "outcome": d.outcome,
        "guard": d.guard,
    }


def _record(r: asyncpg.Record) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in r.items():
        if isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, uuid.UUID | Decimal):
            v = str(v)
        elif isinstance(v, bytes):
            v = v.hex()
        elif k == "detail" and isinstance(v, str):
            v = json.loads(v)
        out[k] = v
    return out


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def _seq_of(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "seq":
            raise ValueError(text)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest(f"cursor {cursor!r} is not one this API gave; pass the previous page's next_cursor") from exc


def _decision_id(request: Request) -> uuid.UUID:
    """The decision id of the path (the route only matches a UUID there)."""
    return request.path_params["decision_id"]


class CommentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=4000)


class ProposalBody(BaseModel):
    """A person proposes acting on a recommendation."""

    model_config = ConfigDict(extra="forbid")

    recommendation_id: uuid.UUID
    kind: Kind
    title: str = Field(min_length=1, max_length=500)
    owner_team: str = Field(min_length=1)
    estimated_monthly_savings: Money
    purchase: CommitmentPurchase | None = None
    tranche: int | None = Field(default=None, ge=0)
    risk: policy.Risk = "low"
    pool_usage_per_hour: policy.Ratio | None = Field(default=None, gt=0)
    billing_account_id: str | None = None
    provider_name: str | None = None

    def proposal(self, proposer: str) -> proposals.Proposal:
        if self.kind is Kind.ANOMALY:
            raise BadRequest("anomalies are not decisions; propose a commitment_plan, rightsizing or idle")
        if (self.kind is Kind.COMMITMENT_PLAN) != (self.purchase is not None):
            raise BadRequest("a commitment_plan proposal needs its purchase (the tranche to buy); others have none")
        coverage = None
        if self.purchase is not None and self.pool_usage_per_hour is not None:
            coverage = (self.purchase.covered_usage_per_hour / self.pool_usage_per_hour).quantize(proposals.RATIO)
        tranche = (self.tranche or 0) if self.purchase is not None else None
        return proposals.Proposal(
            decision_id=uuid.uuid4(),
            recommendation_id=self.recommendation_id,
            tranche=tranche,
            kind=self.kind,
            owner_team=self.owner_team,
            title=self.title,
            proposer=proposer,
            estimated_monthly_savings=self.estimated_monthly_savings,
            monthly_commitment=proposals.monthly_commitment(self.purchase) if self.purchase else None,
            term_months=self.purchase.term_months if self.purchase else None,
            risk=self.risk,
            coverage=coverage,
            billing_account_id=self.billing_account_id,
            provider_name=self.provider_name,
            purchase=self.purchase,
        )


class DelegationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delegate: str = Field(min_length=1)
    until: datetime


async def _body(request: Request, model: type[BaseModel], *, optional: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip() and optional:
        return model()
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        fields = ", ".join(model.model_fields)
        raise BadRequest(f"{where}: {first['msg']}; send JSON with {fields}") from exc


Work = Callable[[asyncpg.Connection, Principal, Trail], Awaitable[Response]]
"""What an endpoint does once its caller is known, inside the request's transaction."""


def add_routes(runtime: ServiceRuntime, *, limits: guard.Guard | None = None) -> list[Route]:
    """Register the exact-path routes on the runtime; return the routes with a decision id in their path."""

    async def serve(request: Request, work: Work, *, allowed: frozenset[Role], write: bool) -> Response:
        """Authenticate, run `work` in a savepoint, and audit the request, all in one transaction."""
        who: Principal | None = None
        refused: list[audit.Entry] = []
        error = ""
        decision_id: uuid.UUID | None = request.path_params.get("decision_id")
        async with runtime.pool.acquire() as conn, conn.transaction():
            if write:
                await audit.lock(conn)  # before any decision row lock: the order every writer keeps
            trail = Trail(guard=limits or guard.Guard())
            try:
                who = await authenticate(conn, request, allowed=EVERYONE)
                if who.role not in allowed:
                    raise Denied(403, f"role {who.role} may not do this; needs one of {', '.join(sorted(allowed))}")
                async with conn.transaction():
                    response = await work(conn, who, trail)
                    await service.flush(conn, trail)
            except Denied as exc:
                response, error = exc.response(), str(exc)
            except Refused as exc:
                response, error = problem(exc.status, str(exc)), str(exc)
            except states.InvalidTransition as exc:
                response, error = problem(409, str(exc)), str(exc)
                refused.append(
                    audit.Entry(
                        actor=who.name if who else "anonymous",
                        action="refused",
                        decision_id=decision_id,
                        detail={"from": exc.current.value, "to": exc.target.value, "reason": str(exc)},
                    )  # fmt: skip
                )
            except NotFound as exc:
                response, error = problem(404, str(exc)), str(exc)
            except BadRequest as exc:
                response, error = problem(400, str(exc)), str(exc)
            except policy.PolicyError as exc:
                response, error = problem(422, str(exc)), str(exc)
            except Exception as exc:  # the savepoint rolled back: the failure is still audited
                log.exception("request failed", extra={"path": request.url.path})
                response, error = problem(500, "the request failed; see the decision service's log"), repr(exc)
            detail = {"error": error} if error else {}
            request_row = audit.Entry(
                actor=who.name if who else "anonymous", action="request", decision_id=decision_id, detail=detail,
                method=request.method, path=request.url.path, status=response.status_code,
            )  # fmt: skip
            await audit.append(conn, [*refused, request_row])
        return response

    def actor(who: Principal) -> Actor:
        return Actor(name=who.name, role=who.role, teams=who.teams)

    # ------------------------------------------------------------------------------------- decisions

    async def decisions(request: Request) -> Response:
        if request.method == "POST":
            return await serve(request, lambda c, w, t: propose(request, c, w, t), allowed=APPROVER_ROLES, write=True)
        if request.method != "GET":
            return problem(405, "use GET or POST")
        return await serve(request, lambda c, w, t: listing(request, c, w, t), allowed=EVERYONE, write=False)

    async def listing(request: Request, conn: asyncpg.Connection, who: Principal, trail: Trail) -> Response:
        q = request.query_params
        chosen = [s for s in (q.get("state") or "").split(",") if s]
        bad = [s for s in chosen if s not in DecisionState.__members__.values()]
        if bad:
            raise BadRequest(f"state {', '.join(bad)} unknown; use {', '.join(s.value for s in DecisionState)}")
        kind = q.get("kind")
        if kind is not None and kind not in proposals.DECIDED:
            raise BadRequest(f"kind must be one of {', '.join(sorted(proposals.DECIDED))}")
        try:
            limit = int(q.get("limit", "50"))
        except ValueError as exc:
            raise BadRequest("limit must be a whole number") from exc
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit must be between 1 and {MAX_PAGE}")
        team = q.get("team")
        teams: list[str] | None = [team] if team else None
        if who.role is Role.ENGINEERING:
            if team and team not in who.teams:
                raise Refused(403, f"{who.name} sees teams {', '.join(sorted(who.teams)) or '(none)'}, not {team}")
            teams = teams or sorted(who.teams)
        cursor = q.get("cursor")
        rows = await repository.listing(
            conn, states=chosen, kind=kind, teams=teams, before_seq=_seq_of(cursor) if cursor else None, limit=limit + 1
        )
        now = _now()
        page = rows[:limit]
        more = len(rows) > limit and page[-1].seq is not None
        return JSONResponse(
            {"decisions": [view(d, now) for d in page], "next_cursor": _cursor(page[-1].seq) if more else None}
        )

    async def propose(request: Request, conn: asyncpg.Connection, who: Principal, trail: Trail) -> Response:
        body: ProposalBody = await _body(request, ProposalBody)
        p = body.proposal(who.name)
        if who.role is Role.ENGINEERING and p.owner_team not in who.teams:
            raise Refused(403, f"{who.name} proposes for teams {', '.join(sorted(who.teams)) or '(none)'}")
        d = await service.propose_by(conn, p, trail, now=_now())
        return JSONResponse(view(d, _now()), status_code=201)

    async def waiting(request: Request) -> Response:
        async def work(conn: asyncpg.Connection, who: Principal, trail: Trail) -> Response:
            now = _now()
            me = actor(who)
            delegations = await repository.delegations_to(conn, who.name, now)
            out = []
            for d in await repository.listing(conn, states=[DecisionState.PENDING_APPROVAL.value], limit=1000):
                grant = approvals.can_approve(d.case(), me, delegations, now)
                if grant is not None:
                    item = view(d, now)
                    item["you_approve_as"] = {"persona": grant.persona.value, "on_behalf_of": grant.on_behalf_of}
                    out.append(item)
            return JSONResponse({"decisions": out})

        return await serve(request, work, allowed=APPROVER_ROLES, write=False)

    async def one(request: Request) -> Response:
        async def work(conn: asyncpg.Connection, who: Principal, trail: Trail) -> Response:
            d = await _visible(conn, _decision_id(request), who)
            return JSONResponse(view(d, _now()))

        return await serve(request, work, allowed=EVERYONE, write=False)

    async def history(request: Request) -> Response:
        async def work(conn: asyncpg.Connection, who: Principal, trail: Trail) -> Response:
            d = await _visible(conn, _decision_id(request), who)
            rows = await repository.history(conn, d.id)
            return JSONResponse({"decision": view(d, _now()), **{k: [_record(r) for r in v] for k, v in rows.items()}})

        return await serve(request, work, allowed=EVERYONE, write=False)

    async def _visible(conn: asyncpg.Connection, decision_id: uuid.UUID, who: Principal) -> Decision:
        d = await repository.load(conn, decision_id)
        if d is None:
            raise NotFound(f"no decision {decision_id}; list them with GET /v1/decisions")
        delegations = await repository.delegations_to(conn, who.name, _now())
        if not service.visible(d, actor(who), delegations):
            raise Refused(403, f"decision {d.id} belongs to team {d.owner_team}, which {who.name} does not see")
        return d

    def act(name: str, do: Callable[..., Awaitable[Decision]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if request.method != "POST":
                return problem(405, f"use POST to {name}")

            async def work(conn: asyncpg.Connection, who: Principal, trail: Trail) -> Response:
                body: CommentBody = await _body(request, CommentBody, optional=True)
                if name == "reject" and not body.comment.strip():
                    raise BadRequest('say why: send {"comment": "..."} to reject')
                d = await do(conn, _decision_id(request), actor(who), body.comment, trail, now=_now())
                return JSONResponse(view(d, _now()))

            return await serve(request, work, allowed=APPROVER_ROLES, write=True)

        return endpoint

    # ----------------------------------------------------------------------------------- policy

    async def policy_endpoint(request: Request) -> Response:
        if request.method == "GET":

            async def read(conn: asyncpg.Connection, who: Principal, trail: Trail) -> Response:
                current, _ = await repository.current_policy(conn)
                raw = request.query_params.get("version")
                try:
                    version = int(raw) if raw else current
                except ValueError as exc:
                    raise BadRequest("version must be a whole number") from exc
                row = await repository.policy_at(conn, version)
                if row is None:
                    raise NotFound(f"no policy version {version}; the newest is {current}")
                if request.query_params.get("format") == "yaml":
                    return Response(row["source"], media_type=YAML, headers={"X-Policy-Version": str(version)})
                return JSONResponse(
                    {
                        "version": version,
                        "current": version == current,
                        "created_by": row["created_by"],
                        "created_at": row["created_at"].isoformat(),
                        **json.loads(row["document"]),
                    }
                )

            return await serve(request, read, allowed=EVERYONE, write=False)
        if request.method != "PUT":
            return problem(405, "use GET or PUT")

        async def write(conn: asyncpg.Connection, who: Principal, trail: Trail) -> Response:
            source = (await request.body()).decode("utf-8", "replace")
            new = policy.parse(source, content_type=request.headers.get("content-type", ""))
            version = await repository.add_policy(conn, new, source=source, by=who.name)
            trail.note(who.name, "policy", version=version, rules=[r.name for r in new.rules])
            return JSONResponse({"version": version, "rules": [r.name for r in new.ordered()]}, status_code=201)

        return await serve(request, write, allowed=POLICY_EDITORS, write=True)

    # ------------------------------------------------------------------------------ delegations

    async def delegations(request: Request) -> Response:
        if request.method == "GET":

            async def mine(conn: asyncpg.Connection, who: Principal, trail: Trail) -> Response:
                rows = await repository.delegations_by(conn, who.name, _now())
                return JSONResponse({"delegations": [_record(r) for r in rows]})

            return await serve(request, mine, allowed=APPROVER_ROLES, write=False)
        if request.method != "POST":
            return problem(405, "use GET or POST")

        async def create(conn: asyncpg.Connection, who: Principal, trail: Trail) -> Response:
            body: DelegationBody = await _body(request, DelegationBody)
            now = _now()
            until = body.until if body.until.tzinfo else body.until.replace(tzinfo=UTC)
            if until <= now:
                raise BadRequest(f"until {until.isoformat()} has passed; give a time in the future")
            if body.delegate == who.name:
                raise BadRequest("delegate to someone else than yourself")
            d = approvals.Delegation(
                delegator=who.name,
                persona=Persona(who.role.value),
                delegate=body.delegate,
                valid_until=until,
                teams=who.teams if who.role is Role.ENGINEERING else frozenset(),
            )
            delegation_id = await repository.add_delegation(conn, d, now=now)
            trail.note(
                who.name, "delegation", id=delegation_id, delegate=d.delegate, persona=d.persona.value,
                teams=sorted(d.teams), until=until,
            )  # fmt: skip
            return JSONResponse(
                {
                    "id": str(delegation_id),
                    "delegator": d.delegator,
                    "delegate": d.delegate,
                    "persona": d.persona.value,
                    "teams": sorted(d.teams),
                    "valid_until": until.isoformat(),
                },
                status_code=201,
            )

        return await serve(request, create, allowed=APPROVER_ROLES, write=True)

    # ------------------------------------------------------------------------------------ audit

    async def audit_log(request: Request) -> Response:
        async def work(conn: asyncpg.Connection, who: Principal, trail: Trail) -> Response:
            q = request.query_params
            try:
                after = int(q.get("after", "0"))
                limit = min(int(q.get("limit", "500")), 5000)
                decision = uuid.UUID(q["decision_id"]) if q.get("decision_id") else None
            except ValueError as exc:
                raise BadRequest("after and limit are whole numbers, decision_id a UUID") from exc
            rows = await conn.fetch(
                """SELECT seq, at, actor, action, decision_id, method, path, status, detail, hash FROM audit_log
                   WHERE seq > $1 AND ($2::uuid IS NULL OR decision_id = $2) ORDER BY seq LIMIT $3""",
                after,
                decision,
                limit,
            )
            return JSONResponse({"rows": [_record(r) for r in rows]})

        return await serve(request, work, allowed=AUDITORS, write=False)

    runtime.route("/v1/decisions", decisions)
    runtime.route("/v1/decisions/waiting", waiting)
    runtime.route("/v1/policy", policy_endpoint)
    runtime.route("/v1/delegations", delegations)
    runtime.route("/v1/audit", audit_log)
    return [
        Route("/v1/decisions/{decision_id:uuid}", one, methods=["GET"]),
        Route("/v1/decisions/{decision_id:uuid}/history", history, methods=["GET"]),
        Route("/v1/decisions/{decision_id:uuid}/approve", act("approve", service.approve), methods=["POST"]),
        Route("/v1/decisions/{decision_id:uuid}/reject", act("reject", service.reject), methods=["POST"]),
    ]


class WithPathRoutes:
    """The runtime matches exact paths only: serve the routes with a decision id in their path here, and
    everything else (lifespan included) through the runtime's app."""

    def __init__(self, app: ASGIApp, routes: list[Route]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            partial: tuple[Route, Scope] | None = None
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    await route.handle({**scope, **child}, receive, send)
                    return
                if match is Match.PARTIAL and partial is None:
                    partial = (route, child)
            if partial is not None:  # the path is ours, the method is not: 405
                route, child = partial
                await route.handle({**scope, **child}, receive, send)
                return
        await self.app(scope, receive, send)
