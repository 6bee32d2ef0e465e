"""Every billing file of ../shared/data/focus and ../shared/data/provider (MANIFEST.md), and every generated
AWS CUR 2.0 and GCP billing export, uploaded to ingest and allocated: BilledCost and EffectiveCost per billing
account and currency equal the file's own totals, computed independently from the raw file, to the cent."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.flow import allocated_totals
from tests.support.platform import running
from tests.support.provider_files import CONTAINERS, GCP_CONTAINERS, write_cur2, write_gcp
from tests.support.services import wait_until
from tests.unit.bills import totals
from tests.unit.bills.test_conversion import DATA, SHARED_FILES

GENERATED = [(f"cur2.{c}", write_cur2, c, totals.aws) for c in CONTAINERS] + [
    (f"gcp.{c}", write_gcp, c, totals.gcp) for c in GCP_CONTAINERS
]


def expected(path: Path, rule) -> dict:
    return {(a, c): (b, e) for (a, c), (b, e) in rule(totals.raw_rows(path)).items()}


async def upload_and_compare(service_env, database_url, path: Path, want: dict, **params: str):
    async with running(service_env) as urls, httpx.AsyncClient(timeout=120) as client:
        ingest = urls.ingest
        params = {"name": path.name} | params
        response = await client.post(f"{ingest}/v1/ingest", params=params, content=path.read_bytes())
        assert response.status_code == 201, response.text

        async def allocated():
            got = {k: (b, e) for k, (b, e, _) in (await allocated_totals(database_url)).items()}
            return got if got == want else None

        await wait_until(allocated, timeout=60, what=f"{path.name} allocated to its own totals")
    return response.json()


@pytest.mark.samples
@pytest.mark.parametrize("name", sorted(SHARED_FILES))
async def test_shared_bill_is_allocated_to_its_own_totals(name, service_env, database_url):
    expected_format, rule, _ = SHARED_FILES[name]
    path = DATA / name
    want = expected(path, rule)
    params = {}
    if any(currency is None for _, currency in want):
        # An export without a currency column: the uploader names the billing currency.
        params["currency"] = "USD"
        want = {(account, "USD"): t for (account, _), t in want.items()}
    assert want, f"{name} has no rows to check"

    report = await upload_and_compare(service_env, database_url, path, want, **params)

    assert report["format"] == expected_format


@pytest.mark.parametrize(("name", "write", "container", "rule"), GENERATED, ids=[g[0] for g in GENERATED])
async def test_generated_bill_is_allocated_to_its_own_totals(
    name, write, container, rule, service_env, database_url, tmp_path
):
    path = write(tmp_path / f"bill.{container}", container=container)

    report = await upload_and_compare(service_env, database_url, path, expected(path, rule))

    assert report["format"] == ("aws-cur2" if name.startswith("cur2") else "gcp-billing")
