"""The console dashboard in headless Chromium (Debian's `chromium`, driven by Playwright; no browser download):
the platform's events are published to the test's topics, a practitioner signs in and the funnel's counts and
money match the console's tables; an engineer of one team sees only that team; axe-core finds no violation of
the label, contrast and landmark rules on any page; a screenshot of each page is saved under docs/console/."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import asyncpg
import axe_playwright_python
import httpx
import pytest
from playwright.async_api import Page, async_playwright

from tests.support import console
from tests.support.platform import ADMIN
from tests.support.services import wait_until

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(axe_playwright_python.__file__).parent / "axe.min.js"
OPEN_SAVINGS = (
    "r.issued_at IS NOT NULL AND r.kind <> 'anomaly' AND r.status NOT IN ('superseded', 'expired') AND "
    "(r.expires_at > now() OR EXISTS "
    "(SELECT 1 FROM console.decision d WHERE d.recommendation_id = r.recommendation_id))"
)  # the savings on offer, written here apart from the console's query
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
AXE_RULES = [
    "label", "select-name", "button-name", "input-button-name", "link-name", "color-contrast", "landmark-one-main",
    "landmark-unique", "landmark-no-duplicate-main", "landmark-no-duplicate-banner", "landmark-banner-is-top-level",
    "landmark-main-is-top-level", "landmark-contentinfo-is-top-level", "region", "document-title", "html-has-lang",
    "page-has-heading-one", "role-img-alt",
]  # fmt: skip


def shown(amount: str) -> str:
    """How the dashboard writes an amount: rounded half-up to cents, thousands grouped."""
    return f"{Decimal(amount).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


async def open_page(page: Page, url: str, name: str) -> None:
    await page.goto(f"{url}/#{name}")
    await page.wait_for_selector(f'body[data-ready="true"][data-page="{name}"]', timeout=30_000)
    await page.wait_for_timeout(300)  # the charts draw on the next animation frame


async def axe_violations(page: Page) -> list[dict]:
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "rules => axe.run(document, {runOnly: {type: 'rule', values: rules}, resultTypes: ['violations']})",
        AXE_RULES,
    )
    ran = {r["id"] for kind in ("passes", "violations", "incomplete", "inapplicable") for r in result[kind]}
    assert ran == set(AXE_RULES), f"axe did not run {set(AXE_RULES) - ran}"
    return [{"id": v["id"], "nodes": [n["target"] for n in v["nodes"]]} for v in result["violations"]]


async def new_page(browser) -> Page:
    # axe is injected as a script the console's Content-Security-Policy would refuse: let the test bypass it.
    context = await browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    return await context.new_page()


async def sign_in(page: Page, url: str, token: str) -> None:
    await page.goto(f"{url}/signin")
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector('body[data-ready="true"]', timeout=30_000)


async def test_dashboard_shows_the_platform_in_each_persona_scope(spawn, service_env, database_url, kafka_namespace):
    # Given a console process that has read the platform's events, and people of each persona
    assert CHROMIUM.exists(), "install Debian's chromium (apt-get install -y chromium): the browser test drives it"
    app = await spawn("finops_console", name="console").start()
    scenario = console.build()
    await scenario.publish(service_env["KAFKA_BOOTSTRAP_SERVERS"], kafka_namespace)
    db = await asyncpg.connect(database_url)
    async with httpx.AsyncClient(base_url=app.url) as client:

        async def settled() -> bool:
            final = await db.fetchval(
                "SELECT count(*) FROM console.decision WHERE state NOT IN ('proposed', 'purchase_requested')"
            )
            completed = await db.fetchval("SELECT count(*) FROM console.cost_version WHERE version = 2")
            return final == len(scenario.decisions) and completed == 1

        await wait_until(settled, timeout=120, what="the console to read the scenario")
        tokens = {}
        for name, body in {
            "practitioner": {"name": "pat", "role": "practitioner"},
            "engineering": {"name": "erin", "role": "engineering", "teams": ["checkout"]},
            "finance": {"name": "fiona", "role": "finance"},
            "business": {"name": "bo", "role": "business", "products": ["shop"]},
        }.items():
            response = await client.post("/v1/tokens", json=body, headers=ADMIN)
            assert response.status_code == 201, response.text
            tokens[name] = response.json()["token"]

    violations: dict[str, list[dict]] = {}
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
            try:
                # When the practitioner signs in and opens every page
                practitioner = await new_page(browser)
                await practitioner.goto(f"{app.url}/signin")
                violations["signin"] = await axe_violations(practitioner)
                await practitioner.screenshot(path=str(SHOTS / "signin.png"))
                await sign_in(practitioner, app.url, tokens["practitioner"])
                for name in ("home", "flow", "pipeline", "kpis", "costs"):
                    await open_page(practitioner, app.url, name)
                    if name == "pipeline":
                        await practitioner.wait_for_timeout(6_000)  # two samples of the offsets for a rate
                        await open_page(practitioner, app.url, name)
                    violations[name] = await axe_violations(practitioner)
                    await practitioner.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

                # the funnel as the practitioner sees it
                await open_page(practitioner, app.url, "flow")
                cards = {}
                for stage in ("recommended", "approved", "purchased", "savings_verified"):
                    card = practitioner.locator(f'[data-stage="{stage}"]')
                    count = int(await card.locator("[data-count]").get_attribute("data-count"))
                    amounts = [
                        (
                            await a.get_attribute("data-currency"),
                            await a.get_attribute("data-amount"),
                            await a.inner_text(),
                        )
                        for a in await card.locator("[data-amount]").all()
                    ]
                    cards[stage] = (count, amounts, await card.inner_text())
                # one decision opened, with its audit trail
                await practitioner.get_by_role("row", name="(verified)").click()
                await practitioner.wait_for_selector("#decision-detail")
                trail = await practitioner.locator("#decision-detail .timeline li").all_inner_texts()
                violations["decision"] = await axe_violations(practitioner)
                await practitioner.screenshot(path=str(SHOTS / "decision.png"), full_page=True)

                # the engineer of checkout, the finance and the business persona sign in
                engineer = await new_page(browser)
                await sign_in(engineer, app.url, tokens["engineering"])
                await open_page(engineer, app.url, "home")
                await engineer.screenshot(path=str(SHOTS / "home-engineering.png"), full_page=True)
                await open_page(engineer, app.url, "flow")
                engineer_counts = {
                    stage: int(
                        await engineer.locator(f'[data-stage="{stage}"] [data-count]').get_attribute("data-count")
                    )
                    for stage in ("recommended", "approved", "purchased", "savings_verified")
                }
                engineer_teams = await engineer.locator("tbody tr td:nth-child(3)").all_inner_texts()
                await open_page(engineer, app.url, "costs")
                await engineer.get_by_label("Group by").select_option("team")
                await engineer.get_by_role("button", name="Show").click()
                await engineer.locator("table tbody tr td:first-child", has_text="checkout").wait_for()
                engineer_cost_rows = await engineer.locator("table tbody tr td:first-child").all_inner_texts()
                engineer_nav = await engineer.locator("nav a").all_inner_texts()
                violations["home-engineering"] = await axe_violations(engineer)
                for persona in ("finance", "business"):
                    page = await new_page(browser)
                    await sign_in(page, app.url, tokens[persona])
                    await open_page(page, app.url, "home")
                    violations[f"home-{persona}"] = await axe_violations(page)
                    await page.screenshot(path=str(SHOTS / f"home-{persona}.png"), full_page=True)
                business_rows = await page.locator("table tbody tr td:first-child").all_inner_texts()
            finally:
                await browser.close()

        # Then the funnel matches the console's tables: counts, and money to the cent
        expected = {
            "recommended": await db.fetch(
                "SELECT currency, count(*) AS n, sum(estimated_monthly_savings) AS m FROM console.recommendation r "
                f"WHERE {OPEN_SAVINGS} GROUP BY currency"
            ),
            "approved": await db.fetch(
                "SELECT currency, count(*) AS n, sum(estimated_monthly_savings) AS m FROM console.decision "
                "WHERE approved_at IS NOT NULL GROUP BY currency"
            ),
            "purchased": await db.fetch(
                "SELECT currency, count(*) AS n, sum(estimated_monthly_savings) AS m FROM console.decision "
                "WHERE purchased_at IS NOT NULL GROUP BY currency"
            ),
            "savings_verified": await db.fetch(
                "SELECT currency, count(*) AS n, sum(realized_savings) AS m FROM console.decision "
                "WHERE verified_at IS NOT NULL GROUP BY currency"
            ),
        }
        for stage, rows in expected.items():
            count, amounts, _ = cards[stage]
            assert count == sum(r["n"] for r in rows), stage
            assert [(c, Decimal(a)) for c, a, _ in amounts] == [(r["currency"], r["m"]) for r in rows], stage
            assert [text for _, _, text in amounts] == [f"{r['currency']} {shown(str(r['m']))}" for r in rows], stage
        assert cards["approved"][0] == 4 and cards["savings_verified"][0] == 1  # the scenario's own numbers
        assert "median lead time from the previous stage: 24.0 h" in cards["approved"][2]
        assert "12.0 h" in cards["purchased"][2]
        assert "proposed by recommend" in trail[0]
        assert any("approved by fiona, erin@checkout" in t for t in trail)
        assert any("savings verified" in t for t in trail)

        # and the engineer sees only checkout: its funnel, its decisions and its costs; no pipeline page
        scoped = await db.fetchrow(
            f"""SELECT (SELECT count(*) FROM console.recommendation r WHERE owner_team = 'checkout'
                          AND {OPEN_SAVINGS}) AS recommended,
                      count(*) FILTER (WHERE approved_at IS NOT NULL) AS approved,
                      count(*) FILTER (WHERE purchased_at IS NOT NULL) AS purchased,
                      count(*) FILTER (WHERE verified_at IS NOT NULL) AS savings_verified
               FROM console.decision WHERE owner_team = 'checkout'"""
        )
        assert engineer_counts == dict(scoped)
        assert engineer_teams and set(engineer_teams) == {"checkout"}
        assert engineer_cost_rows == ["checkout"]
        assert "Pipeline health" not in engineer_nav
        # and the business persona's landing page shows its product's unit cost
        assert "shop" in business_rows

        # and axe-core finds no violation of the label, contrast and landmark rules on any page
        assert {page: v for page, v in violations.items() if v} == {}
    finally:
        await db.close()
