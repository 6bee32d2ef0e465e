"""The AsyncAPI document of every event, served at /asyncapi.json: the console's own document (it consumes every
type of every topic), generated at request time from the contracts, merged with the services' committed
documents (docs/asyncapi/*.json) when their folder is there, so the producers' send operations appear too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finops_runtime import asyncapi
from finops_runtime.app import ServiceRuntime

_REPO_DOCS = Path(__file__).resolve().parents[3] / "docs" / "asyncapi"


def merged(runtime: ServiceRuntime, folder: str | None) -> dict[str, Any]:
    own = asyncapi.document(runtime, service="console")
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
