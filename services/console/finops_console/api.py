"""The console's HTTP surface: the public query API (/v1/...), its OpenAPI and AsyncAPI documents, the dashboard
pages and their sign-in."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles

from finops_console import asyncapi_docs, costs, cursor, openapi, pages, queries, sessions
from finops_console.pipeline import Sampler
from finops_runtime.access import Denied, Principal, Role
from finops_runtime.app import ServiceRuntime
from finops_runtime.oidc import CodeFlow, OidcVerifier, same_state

if TYPE_CHECKING:
    from finops_console.app import ConsoleSettings

STATIC = Path(__file__).parent / "static"
READERS = frozenset(Role)
OPERATORS = frozenset({Role.FINANCE, Role.PRACTITIONER, Role.AUTOMATION, Role.ADMIN})
MAX_LIMIT = 1000
_CONTROL = re.compile(r"[\x00-\x1f]")
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def param(request: Request, name: str) -> str | None:
    """A query parameter, None when absent; an empty one is a mistake worth naming."""
    raw = request.query_params.get(name)
    if raw == "":
        raise queries.BadQuery(f"{name} is empty; leave it out or give it a value")
    if raw is not None and _CONTROL.search(raw):
        raise queries.BadQuery(f"{name} contains a control character; send printable text")
    return raw


def values(request: Request, name: str) -> list[str] | None:
    raw = param(request, name)
    if raw is None:
        return None
    parts = raw.split(",")
    if not all(parts):
        raise queries.BadQuery(f"{name} has an empty value in {raw!r}; separate values with single commas")
    return parts


def limit_of(request: Request) -> int:
    raw = param(request, "limit")
    if raw is None:
        return 100
    try:
        limit = int(raw)
    except ValueError as exc:
        raise queries.BadQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {raw!r}") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise queries.BadQuery(f"limit must be from 1 to {MAX_LIMIT}, got {limit}")
    return limit


def month_of(request: Request, name: str) -> Any:
    raw = param(request, name)
    return queries.parse_month(raw, name) if raw is not None else None


Endpoint = Callable[[Any, Request, Principal], Awaitable[Any]]


def build_router(runtime: ServiceRuntime, settings: ConsoleSettings, sampler: Sampler) -> Router:
    """Every console route; the runtime's own (/health, /ready, /metrics, /v1/tokens) are served beside them."""
    lifetime = timedelta(hours=settings.session_hours)
    sso = CodeFlow(OidcVerifier(settings.oidc)) if settings.oidc.enabled and settings.oidc.client_id else None

    def api(allowed: frozenset[Role], endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            async with runtime.pool.acquire() as conn:
                try:
                    who = await sessions.principal(conn, request, allowed=allowed)
                    result = await endpoint(conn, request, who)
                except Denied as denied:
                    return denied.response()
                except (queries.BadQuery, cursor.BadCursor) as exc:
                    return problem(400, str(exc))
            if isinstance(result, Response):
                return result
            return JSONResponse(result, headers={"Cache-Control": "no-store"})

        return handle

    async def me(conn: Any, request: Request, who: Principal) -> Any:
        scope = who.scope()
        return {
            "name": who.name,
            "role": who.role.value,
            "teams": sorted(who.teams),
            "products": sorted(who.products),
            "scope": None if scope is None else {k: sorted(v) for k, v in scope.items()},
        }

    async def cost_list(conn: Any, request: Request, who: Principal) -> Any:
        filters = {d: v for d in (*costs.DIMENSIONS, "currency") if (v := values(request, d))}
        group_by = tuple(values(request, "group_by") or ("team",))
        query = queries.CostQuery(
            group_by=group_by,
            filters=filters,
            period_from=month_of(request, "period_from"),
            period_to=month_of(request, "period_to"),
            sort=param(request, "sort") or "key",
            limit=limit_of(request),
            after=param(request, "cursor"),
        )
        return (await queries.cost_page(conn, query, who.scope())).body()

    async def allocation_list(conn: Any, request: Request, who: Principal) -> Any:
        page = await queries.allocation_page(
            conn,
            scope=who.scope(),
            period=month_of(request, "period"),
            owners=values(request, "owner"),
            accounts=values(request, "billing_account"),
            limit=limit_of(request),
            after=param(request, "cursor"),
        )
        return page.body()

    async def recommendation_list(conn: Any, request: Request, who: Principal) -> Any:
        page = await queries.recommendation_page(
            conn,
            scope=who.scope(),
            status=param(request, "status"),
            kinds=values(request, "kind"),
            teams=values(request, "team"),
            limit=limit_of(request),
            after=param(request, "cursor"),
        )
        return page.body()

    async def decision_list(conn: Any, request: Request, who: Principal) -> Any:
        page = await queries.decision_page(
            conn,
            scope=who.scope(),
            states=values(request, "state"),
            kinds=values(request, "kind"),
            teams=values(request, "team"),
            limit=limit_of(request),
            after=param(request, "cursor"),
        )
        return page.body()

    async def decision_one(conn: Any, request: Request, who: Principal) -> Any:
        raw = request.path_params["decision_id"]
        try:
            decision_id = uuid.UUID(raw)
        except ValueError as exc:
            raise queries.BadQuery(f"decision id {raw!r} is not a UUID") from exc
        found = await queries.decision_detail(conn, decision_id, who.scope())
        if found is None:
            return problem(404, f"no decision {decision_id} in your scope")
        return found

    async def funnel(conn: Any, request: Request, who: Principal) -> Any:
        return await queries.funnel(conn, scope=who.scope(), kinds=values(request, "kind"))

    async def kpis(conn: Any, request: Request, who: Principal) -> Any:
        return await queries.kpis(conn, scope=who.scope(), period=month_of(request, "period"))

    async def journals(conn: Any, request: Request, who: Principal) -> Any:
        return await queries.journals(conn, scope=who.scope())

    async def pipeline(conn: Any, request: Request, who: Principal) -> Any:
        return {
            **sampler.report(window_s=settings.rate_window_s),
            "ingest_runs": await queries.ingest_runs(conn),
            "consumed": await queries.tallies(conn),
        }

    document = openapi.document()

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(document)

    async def asyncapi_json(request: Request) -> Response:
        return JSONResponse(asyncapi_docs.merged(runtime, settings.asyncapi_dir))

    async def index(request: Request) -> Response:
        async with runtime.pool.acquire() as conn:
            try:
                await sessions.principal(conn, request, allowed=READERS)
            except Denied:
                return RedirectResponse("/signin", status_code=303)
        return FileResponse(STATIC / "index.html", headers={**_SECURITY_HEADERS, "Cache-Control": "no-store"})

    async def signin(request: Request) -> Response:
        if request.method == "GET":
            return HTMLResponse(pages.signin(sso=sso is not None), headers=_SECURITY_HEADERS)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        if not token:
            return HTMLResponse(pages.signin("Enter your API token."), status_code=400, headers=_SECURITY_HEADERS)
        async with runtime.pool.acquire() as conn:
            found = await sessions.sign_in(conn, token, lifetime=lifetime)
        if found is None:
            return HTMLResponse(
                pages.signin("That token is unknown or revoked; ask an admin for a new one (POST /v1/tokens)."),
                status_code=401,
                headers=_SECURITY_HEADERS,
            )
        session_id, _ = found
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            sessions.COOKIE,
            session_id,
            max_age=int(lifetime.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies or request.url.scheme == "https",
            path="/",
        )
        return response

    def session_cookie(response: Response, request: Request, session_id: str) -> None:
        response.set_cookie(
            sessions.COOKIE,
            session_id,
            max_age=int(lifetime.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies or request.url.scheme == "https",
            path="/",
        )

    def sso_page(status: int, message: str) -> Response:
        response = HTMLResponse(
            pages.signin(message, sso=sso is not None), status_code=status, headers=_SECURITY_HEADERS
        )
        response.delete_cookie(sessions.LOGIN_COOKIE, path="/signin/oidc", httponly=True, samesite="lax")
        return response

    async def signin_oidc(request: Request) -> Response:
        """Single sign-on: send the browser to the identity provider (code flow, PKCE S256, state, nonce)."""
        if sso is None:
            return problem(404, "single sign-on is not configured (FINOPS_OIDC_ISSUER, FINOPS_OIDC_CLIENT_ID)")
        redirect_uri = settings.oidc.redirect_url or f"{str(request.base_url).rstrip('/')}/signin/oidc/callback"
        try:
            login = await sso.start(redirect_uri)
        except Denied as denied:
            return sso_page(denied.status, str(denied))
        async with runtime.pool.acquire() as conn:
            login_id = await sessions.begin_oidc(conn, login)
        response = RedirectResponse(login.url, status_code=303)
        response.set_cookie(
            sessions.LOGIN_COOKIE,
            login_id,
            max_age=int(sessions.LOGIN_LIFETIME.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookies or request.url.scheme == "https",
            path="/signin/oidc",
        )
        return response

    async def signin_oidc_callback(request: Request) -> Response:
        """The provider's redirect back: the state must be the one this browser was sent with, then the code is
        exchanged and the ID token verified (signature, issuer, audience, expiry, nonce) before a session opens."""
        if sso is None:
            return problem(404, "single sign-on is not configured (FINOPS_OIDC_ISSUER, FINOPS_OIDC_CLIENT_ID)")
        query = request.query_params
        async with runtime.pool.acquire() as conn:
            pending = await sessions.take_oidc_login(conn, request.cookies.get(sessions.LOGIN_COOKIE))
        if pending is None:
            return sso_page(
                400, "This sign-in was not started in this browser, or it took over 10 minutes; start again."
            )
        if not same_state(pending["state"], query.get("state")):
            return sso_page(400, "The sign-in's state does not match the one this browser was sent with; start again.")
        if query.get("error"):
            return sso_page(
                401, f"The identity provider refused the sign-in: {query.get('error_description') or query['error']}."
            )
        code = query.get("code")
        if not code:
            return sso_page(400, "The identity provider sent no code; start again.")
        try:
            identity = await sso.finish(
                code=code,
                code_verifier=pending["code_verifier"],
                redirect_uri=pending["redirect_uri"],
                nonce=pending["nonce"],
            )
        except Denied as denied:
            return sso_page(denied.status, f"{denied}.")
        async with runtime.pool.acquire() as conn:
            session_id = await sessions.open_oidc_session(conn, identity, lifetime=lifetime)
        response = HTMLResponse(
            pages.signed_in(identity.name), headers={**_SECURITY_HEADERS, "Cache-Control": "no-store"}
        )
        response.delete_cookie(sessions.LOGIN_COOKIE, path="/signin/oidc", httponly=True, samesite="lax")
        session_cookie(response, request, session_id)
        return response

    async def signout(request: Request) -> Response:
        async with runtime.pool.acquire() as conn:
            await sessions.sign_out(conn, request.cookies.get(sessions.COOKIE))
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return Router(
        routes=[
            Route("/", index),
            Route("/signin", signin, methods=["GET", "POST"]),
            Route("/signin/oidc", signin_oidc),
            Route("/signin/oidc/callback", signin_oidc_callback),
            Route("/signout", signout, methods=["POST"]),
            Route("/openapi.json", openapi_json),
            Route("/asyncapi.json", asyncapi_json),
            Route("/v1/me", api(READERS, me)),
            Route("/v1/costs", api(READERS, cost_list)),
            Route("/v1/allocations", api(READERS, allocation_list)),
            Route("/v1/recommendations", api(READERS, recommendation_list)),
            Route("/v1/decisions", api(READERS, decision_list)),
            Route("/v1/decisions/{decision_id}", api(READERS, decision_one)),
            Route("/v1/funnel", api(READERS, funnel)),
            Route("/v1/kpis", api(READERS, kpis)),
            Route("/v1/journals", api(OPERATORS, journals)),
            Route("/v1/pipeline", api(OPERATORS, pipeline)),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        ]
    )
