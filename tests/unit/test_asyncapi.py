"""The committed AsyncAPI documents are what the services generate today."""

import json

import pytest

from finops_runtime.asyncapi import SERVICES, render
from tests.support.focus_files import ROOT


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_committed_asyncapi_document_is_current(service):
    committed = ROOT / "docs" / "asyncapi" / f"{service}.json"

    assert committed.read_text() == render(service), f"{committed} is stale: run `make asyncapi` and commit it"


def test_the_documents_describe_the_cost_flow_both_ways():
    ingest, allocation = (json.loads(render(s)) for s in ("ingest", "allocation"))

    assert ingest["operations"]["sendCostBatchIngested"]["action"] == "send"
    assert allocation["operations"]["receivefinops_cost_v1"]["action"] == "receive"
    billed = ingest["components"]["schemas"]["CostLine"]["properties"]["billed_cost"]
    assert billed["type"] == "string", "money travels as a decimal string"
