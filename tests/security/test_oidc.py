"""Single sign-on against a real OpenID Connect provider (mock-oauth2-server, started locally by
deploy/local/oidc.sh), a real console on real Kafka and PostgreSQL: the provider's JWTs are accepted by the API with
the role and team their groups map to; expired, mis-addressed, foreign, forged and unsigned tokens get 401 with the
reason; keys rotated by the provider are picked up; the console's code flow (PKCE, state, nonce) ends in a session
of the mapped role, and a forged or replayed state opens none."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from playwright.async_api import async_playwright

from finops_allocation.app import AllocationSettings
from finops_allocation.app import create_app as create_allocation
from finops_console.app import ConsoleSettings, create_app
from finops_runtime.access import Denied
from finops_runtime.oidc import CodeFlow, OidcSettings, OidcVerifier
from tests.support import console
from tests.support.kafka import delete_topics
from tests.support.oidc import API_AUDIENCE, CONSOLE_CLIENT, Provider
from tests.support.platform import ADMIN_TOKEN
from tests.support.services import free_port, serve_in_process, wait_until

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """The local OIDC provider for the whole session; fails (never skips) when it cannot start."""
    found = Provider(state_dir=tmp_path_factory.mktemp("oidc"), port=free_port())
    found.start()
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="module")
async def sso_console(endpoints, provider: Provider) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A console with single sign-on configured, that has read the console scenario's events (three teams)."""
    test_id = uuid.uuid4().hex[:10]
    name, namespace = f"t_{test_id}", f"t{test_id}."
    admin = await asyncpg.connect(endpoints.database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    database_url = f"{endpoints.database_url.rpartition('/')[0]}/{name}"
    settings = ConsoleSettings(
        database_url=database_url,
        kafka_bootstrap_servers=endpoints.kafka,
        kafka_namespace=namespace,
        admin_token=ADMIN_TOKEN,
        relay_poll_interval_s=0.2,
        pipeline_sample_s=0.5,
        oidc=provider.settings(),
    )
    scenario = console.build()
    try:
        async with serve_in_process(create_app(settings), free_port()) as url:
            await scenario.publish(endpoints.kafka, namespace)
            conn = await asyncpg.connect(database_url)
            try:

                async def settled() -> bool:
                    final = await conn.fetchval(
                        "SELECT count(*) FROM console.decision WHERE state NOT IN ('proposed', 'purchase_requested')"
                    )
                    versions = await conn.fetchval("SELECT count(*) FROM console.cost_version WHERE version = 2")
                    return final == len(scenario.decisions) and versions == 1

                await wait_until(settled, timeout=90, what="the console to read the scenario's events")
                yield url, conn
            finally:
                await conn.close()
    finally:
        await delete_topics(endpoints.kafka, prefix=namespace)
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict, claims: dict, *, hmac_key: bytes | None = None) -> str:
    """A token an attacker writes by hand: unsigned (alg none), or HMAC-signed with a key of their choosing."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = b64(hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()) if hmac_key else ""
    return f"{signing_input}.{signature}"


def good_claims(provider: Provider) -> dict:
    now = int(time.time())
    return {
        "iss": provider.issuer,
        "sub": "mallory",
        "aud": API_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "groups": ["finops-finance"],
    }


async def all_items(client: httpx.AsyncClient, url: str, headers: dict[str, str], **params: str) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        response = await client.get(url, params={**params, **({"cursor": cursor} if cursor else {})}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_a_provider_token_reads_the_api_with_the_mapped_role_and_team(sso_console, provider):
    # Given an engineer whose groups are finops-engineering and team:checkout, and a person in finops-finance
    url, _ = sso_console
    engineer = bearer(await provider.token("engineer"))
    finance = bearer(await provider.token("finance"))
    nobody = bearer(await provider.token("no-role"))

    # When each reads the console's API with the provider's access token
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        me = (await client.get("/v1/me", headers=engineer)).json()
        engineer_costs = await all_items(client, f"{url}/v1/costs", engineer, group_by="team")
        engineer_decisions = await all_items(client, f"{url}/v1/decisions", engineer)
        engineer_pipeline = await client.get("/v1/pipeline", headers=engineer)
        finance_costs = await all_items(client, f"{url}/v1/costs", finance, group_by="team")
        unmapped = await client.get("/v1/me", headers=nobody)

    # Then the engineer is an engineering principal of team checkout only, finance sees every team,
    # and a person in no mapped group is refused with the reason
    assert me["role"] == "engineering" and me["teams"] == ["checkout"] and me["name"] == "Erin Engineer"
    assert me["scope"] == {"team": ["checkout"]}
    assert engineer_costs and {row["team"] for row in engineer_costs} == {"checkout"}
    assert engineer_decisions and {d["owner_team"] for d in engineer_decisions} == {"checkout"}
    assert engineer_pipeline.status_code == 403
    assert {row["team"] for row in finance_costs} > {"checkout"}
    assert unmapped.status_code == 403 and "FINOPS_OIDC_ROLE_MAP" in unmapped.json()["error"]


async def test_another_service_takes_provider_tokens_through_the_runtime(
    sso_console, provider, endpoints, database_url, kafka_namespace
):
    # Given the allocation service with the same OIDC settings, beside the console
    settings = AllocationSettings(
        database_url=database_url,
        kafka_bootstrap_servers=endpoints.kafka,
        kafka_namespace=kafka_namespace,
        admin_token=ADMIN_TOKEN,
        oidc=provider.settings(),
    )
    engineer = bearer(await provider.token("engineer"))
    expired = bearer(await provider.token("expired"))
    async with serve_in_process(create_allocation(settings), free_port()) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            # When an engineer reads the rules (people may) and edits them (only rule editors may)
            read = await client.get("/v1/allocation/rules", headers=engineer)
            write = await client.put("/v1/allocation/rules", headers=engineer, json={"rules": []})
            stale = await client.get("/v1/allocation/rules", headers=expired)

    # Then the read is allowed, the edit is refused for the engineering role, an expired token is refused
    assert read.status_code == 200, read.text
    assert write.status_code == 403 and "role engineering may not" in write.json()["error"]
    assert stale.status_code == 401 and "expired" in stale.json()["error"]

    # And the console, still running, still takes provider tokens (its verifier outlived allocation's)
    async with httpx.AsyncClient(base_url=sso_console[0], timeout=30) as client:
        assert (await client.get("/v1/me", headers=engineer)).json()["role"] == "engineering"


async def test_tokens_that_are_not_the_providers_for_this_api_get_401_with_the_reason(sso_console, provider):
    # Given tokens from the provider that are expired, for another audience or claim another issuer, and tokens
    # an attacker made: signed by another key (under the provider's kid and under a new kid), unsigned, and
    # HMAC-signed with the provider's public key as the secret
    url, _ = sso_console
    attacker = RSAKey.generate_key(2048, parameters={"kid": "finops"})
    stranger = RSAKey.generate_key(2048, parameters={"kid": "not-the-providers"})
    public = RSAKey.import_key((await provider.jwks())["keys"][0])
    public_pem = public.as_pem(private=False)
    claims = good_claims(provider)
    cases = {
        "expired": (await provider.token("expired"), "expired"),
        "wrong audience": (await provider.token("other-audience"), "not for 'finops-api'"),
        "wrong issuer": (await provider.token("other-issuer"), "not by the configured issuer"),
        "another key, provider's kid": (
            jwt.encode({"alg": "RS256", "kid": "finops"}, claims, attacker),
            "signature does not verify",
        ),
        "another key, unknown kid": (
            jwt.encode({"alg": "RS256", "kid": "not-the-providers"}, claims, stranger),
            "no key with kid 'not-the-providers'",
        ),
        "alg none": (forged({"alg": "none", "typ": "JWT"}, claims), "algorithm 'none' is not accepted"),
        "HS256, public key as secret": (
            forged({"alg": "HS256", "typ": "JWT", "kid": "finops"}, claims, hmac_key=public_pem),
            "algorithm 'HS256' is not accepted",
        ),
    }

    # When each is sent to the API
    results = {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for case, (token, _) in cases.items():
            response = await client.get("/v1/costs", headers=bearer(token))
            results[case] = (response.status_code, response.json().get("error", ""))
    print("\ncase                          status  reason")
    for case, (status, reason) in results.items():
        print(f"{case:<30}{status:<8}{reason}")

    # Then every one is refused with 401 and says why
    for case, (_, reason) in cases.items():
        assert results[case][0] == 401, (case, results[case])
        assert reason in results[case][1], (case, results[case])


async def test_keys_rotated_by_the_provider_are_fetched_and_old_ones_stop_working(sso_console, provider):
    # Given a verifier and the console, both holding the provider's current key, and a token signed with it
    url, _ = sso_console
    verifier = OidcVerifier(provider.settings())
    before = await provider.token("finance")
    assert (await verifier.principal(before)).role.value == "finance"
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        assert (await client.get("/v1/me", headers=bearer(before))).status_code == 200
    fetches = verifier.jwks_fetches

    # When the provider restarts, which makes it sign with a new key, and issues a new token
    await asyncio.to_thread(provider.restart)
    after = await provider.token("finance")
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        console_after = await client.get("/v1/me", headers=bearer(after))
        console_before = await client.get("/v1/me", headers=bearer(before))

    # Then the new token verifies (the JWKS was fetched again) and the one signed with the retired key does not
    assert (await verifier.principal(after)).role.value == "finance"
    assert verifier.jwks_fetches == fetches + 1
    with pytest.raises(Denied) as old:
        await verifier.principal(before)
    assert old.value.status == 401 and "signature does not verify" in str(old.value)
    assert console_after.status_code == 200 and console_after.json()["role"] == "finance"
    assert console_before.status_code == 401


async def test_while_the_provider_is_down_cached_keys_keep_working_and_others_get_503(provider):
    # Given a verifier holding the provider's keys, whose cache is over (a forced refresh is due at each token),
    # and a verifier that never fetched them
    warm = OidcVerifier(provider.settings(jwks_cache_s=0, jwks_min_refresh_s=0))
    token = await provider.token("finance")
    assert (await warm.principal(token)).role.value == "finance"
    cold = OidcVerifier(provider.settings(jwks_min_refresh_s=60))

    # When the provider stops
    await asyncio.to_thread(provider.stop)
    try:
        still = await warm.principal(token)
        with pytest.raises(Denied) as unreachable:
            await cold.principal(token)
        started = time.monotonic()
        with pytest.raises(Denied) as again:
            await cold.principal(token)
        answered_in = time.monotonic() - started
    finally:
        await asyncio.to_thread(provider.start)

    # Then the warm verifier still verifies with the keys it had, and the cold one answers 503 naming the provider,
    # the second time at once, without trying the provider again within the interval
    assert still.role.value == "finance"
    assert unreachable.value.status == 503 and "cannot be reached" in str(unreachable.value)
    assert again.value.status == 503 and answered_in < 0.5


async def test_unknown_key_ids_refresh_the_jwks_at_most_once_per_interval(provider):
    # Given a verifier that refreshes its JWKS at most every 60 s, already holding the provider's keys
    verifier = OidcVerifier(provider.settings(jwks_min_refresh_s=60))
    assert (await verifier.principal(await provider.token("finance"))).role.value == "finance"
    stranger = RSAKey.generate_key(2048, parameters={"kid": "rotated-2"})
    token = jwt.encode({"alg": "RS256", "kid": "rotated-2"}, good_claims(provider), stranger)

    # When tokens naming a key id it does not hold arrive, once right after the first fetch, then many times
    first = verifier.jwks_fetches
    for _ in range(20):
        with pytest.raises(Denied) as refused:
            await verifier.principal(token)
        assert refused.value.status == 401 and "rotated-2" in str(refused.value)

    # Then the JWKS is not fetched again within the interval: forged kids cannot make it hammer the provider
    assert verifier.jwks_fetches == first

    # And once the interval has passed (a verifier with no throttle), an unknown kid does trigger one fetch
    eager = OidcVerifier(provider.settings(jwks_min_refresh_s=0))
    await eager.principal(await provider.token("finance"))
    with pytest.raises(Denied):
        await eager.principal(token)
    assert eager.jwks_fetches == 2


async def test_console_code_flow_ends_in_a_session_of_the_mapped_role(sso_console, provider):
    # Given the console's sign-in page, which offers single sign-on
    url, conn = sso_console
    async with httpx.AsyncClient(base_url=url, timeout=30, follow_redirects=True) as browser:
        page = await browser.get("/signin")

        # When the person follows it: console -> provider (signs the fixed persona in) -> console callback
        landed = await browser.get("/signin/oidc")
        hops = [*(str(r.url) for r in landed.history), str(landed.url)]
        me = await browser.get("/v1/me")
        dashboard = await browser.get("/")

    # Then the provider was asked for a code with PKCE S256, a state and a nonce, the callback carried that
    # state back, and the session's principal is the practitioner the provider's groups map to
    assert "/signin/oidc" in page.text
    authorize = parse_qs(urlsplit(hops[1]).query)
    assert hops[1].startswith(f"{provider.issuer}/authorize")
    assert authorize["response_type"] == ["code"] and authorize["client_id"] == [CONSOLE_CLIENT]
    assert authorize["code_challenge_method"] == ["S256"] and len(authorize["code_challenge"][0]) == 43
    assert len(authorize["state"][0]) >= 32 and len(authorize["nonce"][0]) >= 32
    assert parse_qs(urlsplit(hops[2]).query)["state"] == authorize["state"]
    assert landed.status_code == 200 and "Signed in" in landed.text
    assert "samesite=strict" in landed.headers["set-cookie"].lower()
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "practitioner" and me.json()["name"] == "Paula Practitioner"
    assert dashboard.status_code == 200 and "FinOps console" in dashboard.text
    ids = await conn.fetch("SELECT principal_id FROM console.oidc_session")
    assert f"oidc:{provider.issuer}#paula-0001" in {r["principal_id"] for r in ids}
    assert await conn.fetchval("SELECT count(*) FROM console.oidc_login") == 0


async def test_a_forged_or_replayed_state_opens_no_session(sso_console, provider):
    # Given a browser that started a sign-in and got a code back from the provider
    url, conn = sso_console
    sessions_before = await conn.fetchval("SELECT count(*) FROM console.oidc_session")
    async with httpx.AsyncClient(base_url=url, timeout=30) as browser:
        start = await browser.get("/signin/oidc")
        async with httpx.AsyncClient(timeout=30) as to_provider:
            back = await to_provider.get(start.headers["location"])
        callback = urlsplit(back.headers["location"])
        code = parse_qs(callback.query)["code"][0]
        state = parse_qs(callback.query)["state"][0]

        # When the callback comes with a state that is not the one sent, then from a browser with no pending
        # sign-in, then the genuine callback in the browser that started it
        forged_state = await browser.get("/signin/oidc/callback", params={"code": code, "state": "forged-" + state})
        async with httpx.AsyncClient(base_url=url, timeout=30) as other_browser:
            foreign = await other_browser.get("/signin/oidc/callback", params={"code": code, "state": state})
        replayed = await browser.get("/signin/oidc/callback", params={"code": code, "state": state})

    # Then the forged state is refused, and it used up the pending sign-in, so the genuine callback is refused too;
    # a browser that did not start the sign-in is refused; no session was opened
    assert forged_state.status_code == 400 and "state does not match" in forged_state.text
    assert foreign.status_code == 400 and "not started in this browser" in foreign.text
    assert replayed.status_code == 400 and "not started in this browser" in replayed.text
    assert "finops_session" not in forged_state.headers.get("set-cookie", "")
    assert await conn.fetchval("SELECT count(*) FROM console.oidc_session") == sessions_before


async def test_an_id_token_with_another_nonce_is_refused(provider):
    # Given a code flow started by the platform, and the provider's code for it
    flow = CodeFlow(OidcVerifier(provider.settings()))
    login = await flow.start("http://127.0.0.1:9/signin/oidc/callback")
    async with httpx.AsyncClient(timeout=30) as client:
        back = await client.get(login.url)
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]

    # When the code is exchanged but the ID token is checked against another sign-in's nonce
    with pytest.raises(Denied) as refused:
        await flow.finish(
            code=code, code_verifier=login.code_verifier, redirect_uri=login.redirect_uri, nonce="another-sign-in"
        )

    # Then the ID token is refused as not belonging to this sign-in
    assert refused.value.status == 401 and "nonce" in str(refused.value)


async def test_a_person_signs_in_to_the_console_in_chromium(sso_console, provider):
    # Given the console opened as http://localhost:<port> in headless Chromium, while the provider is
    # http://127.0.0.1:<port>: another site, so the way back from the provider is a cross-site navigation
    assert CHROMIUM.exists(), "install Debian's chromium (apt-get install -y chromium): this test drives it"
    console_url = sso_console[0].replace("127.0.0.1", "localhost")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(f"{console_url}/signin")

            # When the person chooses single sign-on
            await page.get_by_role("link", name="Sign in with your organisation (single sign-on)").click()
            await page.wait_for_selector('body[data-ready="true"]', timeout=30_000)
            landed = page.url
            me = await page.evaluate("fetch('/v1/me').then(r => r.json())")
            cookies = {c["name"]: c for c in await page.context.cookies()}
        finally:
            await browser.close()

    # Then the dashboard opens (the Strict session cookie was sent once the console's own page refreshed to it),
    # signed in as the practitioner the provider's groups map to, and the pending sign-in's cookie is gone
    assert landed.rstrip("/") == console_url or landed.startswith(f"{console_url}/#"), landed
    assert me["role"] == "practitioner" and me["name"] == "Paula Practitioner"
    assert cookies["finops_session"]["sameSite"] == "Strict" and cookies["finops_session"]["httpOnly"]
    assert "finops_oidc_login" not in cookies


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"issuer": "http://idp.example.org/finops", "audience": "api"}, "https"),
        ({"issuer": "https://idp.example.org/finops", "audience": "api", "algorithms": "RS256,HS256"}, "HS256"),
        ({"issuer": "https://idp.example.org/finops", "audience": "api", "algorithms": "none"}, "none"),
        ({"issuer": "https://idp.example.org/finops"}, "FINOPS_OIDC_AUDIENCE"),
    ],
)
def test_unsafe_settings_are_refused_when_they_load(fields, named):
    # Given settings with a plain-http issuer off loopback, a symmetric or no algorithm, or no audience
    # When they are loaded, Then they are refused naming what to fix
    with pytest.raises(ValueError, match=named):
        OidcSettings(**fields)
