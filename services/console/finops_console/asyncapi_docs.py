"""The AsyncAPI document of every event, served at /asyncapi.json: the console's own document (it consumes every
type of every topic), generated at request time from the contracts, merged with the services' committed
documents (docs/asyncapi/*.json) when their folder is there, so the producers' send operations appear too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finops_contracts.events import EVENT_TYPES
from finops_runtime import asyncapi
from finops_runtime.app import ServiceRuntime

_REPO_DOCS = Path(__file__).resolve().parents[3] / "docs" / "asyncapi"


def _own(runtime: ServiceRuntime) -> dict[str, Any]:
    # The generator takes each message's summary from its model's docstring; a contract without one would make
    # it fail, so lend those the event type as a docstring while the document is generated.
    undocumented = [m for m in EVENT_TYPES.values() if not (m.__doc__ or "").strip()]
    for model in undocumented:
        model.__doc__ = model.TYPE
    try:
        return asyncapi.document(runtime, service="console")
    finally:
        for model in undocumented:
            model.__doc__ = None


def merged(runtime: ServiceRuntime, folder: str | None) -> dict[str, Any]:
    own = _own(runtime)
    result: dict[str, Any] = {
        "asyncapi": own["asyncapi"],
        "info": {
            "title": "finops platform events",
            "version": "1.0.0",
            "description": "Every event of the platform: channels (topics), messages and their payload schemas, "
            "and the operations of each service that publishes or consumes them.",
        },
        "defaultContentType": own["defaultContentType"],
        "channels": {},
        "operations": {},
        "components": {"messages": {}, "schemas": {}},
    }
    docs = {"console": own}
    path = Path(folder) if folder else _REPO_DOCS
    if path.is_dir():
        for file in sorted(path.glob("*.json")):
            if file.stem != "console":
                docs[file.stem] = json.loads(file.read_text())
    for service, doc in docs.items():
        for name, channel in doc.get("channels", {}).items():
            target = result["channels"].setdefault(name, {**channel, "messages": {}})
            target["messages"].update(channel.get("messages", {}))
        for name, operation in doc.get("operations", {}).items():
            result["operations"][f"{service}.{name}"] = operation
        components = doc.get("components", {})
        result["components"]["messages"].update(components.get("messages", {}))
        result["components"]["schemas"].update(components.get("schemas", {}))
    result["channels"] = dict(sorted(result["channels"].items()))
    return result
