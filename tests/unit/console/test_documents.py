"""The OpenAPI document: every operation has its parameters, a 200 response and the error responses, and every
schema it refers to exists. Decision states only move forward in the read model."""

from __future__ import annotations

import json

from finops_console import openapi, readmodels
from finops_console.queries import DECISION_STATES


def refs(value: object) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "$ref" and isinstance(v, str):
                found.add(v.rsplit("/", 1)[-1])
            else:
                found |= refs(v)
    elif isinstance(value, list):
        for v in value:
            found |= refs(v)
    return found


def test_openapi_operations_document_success_and_errors():
    doc = openapi.document()

    for path, item in doc["paths"].items():
        responses = item["get"]["responses"]
        assert {"200", "401", "403"} <= responses.keys(), path
    assert refs(doc) <= doc["components"]["schemas"].keys()
    assert doc["openapi"] == "3.1.0"
    json.dumps(doc)  # serializable as served


def test_every_decision_state_has_a_rank_and_final_states_rank_last():
    assert set(readmodels.STAGE_RANK) == set(DECISION_STATES)
    assert readmodels.STAGE_RANK["savings_verified"] > readmodels.STAGE_RANK["purchased"]
    assert readmodels.STAGE_RANK["purchased"] > readmodels.STAGE_RANK["purchase_requested"]
    assert readmodels.STAGE_RANK["approved"] > readmodels.STAGE_RANK["pending_approval"]
