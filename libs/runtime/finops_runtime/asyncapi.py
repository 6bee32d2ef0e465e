"""The AsyncAPI 3.0 document of a service, generated from what its runtime declares: the events it
publishes through its outbox and the topics, groups and event types it consumes. The payload schemas come
from the pydantic models in finops_contracts, the only place a schema is defined.

    python -m finops_runtime.asyncapi --write docs/asyncapi      # regenerate the committed documents
    python -m finops_runtime.asyncapi --check docs/asyncapi      # exit 1 when they are stale
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from finops_contracts.costframe import ARROW_STREAM, COST_LINE_SCHEMA
from finops_contracts.events import EVENT_TYPES, CostLine, Event
from finops_contracts.topics import BY_NAME, Topic
from finops_runtime.app import ServiceRuntime

SERVICES = {
    "ingest": "finops_ingest.app:build_runtime",
    "allocation": "finops_allocation.app:build_runtime",
    "recommend": "finops_recommend.app:build_runtime",
    "notify": "finops_notify.app:build_runtime",
    "decision": "finops_decision.app:build_runtime",
    "purchase": "finops_purchase.app:build_runtime",
    "console": "finops_console.app:build_runtime",
}

_HEADERS = {
    "type": "object",
    "description": "CloudEvents 1.0 attributes in Kafka binary mode, plus W3C trace context.",
    "required": ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "format": "uuid", "description": "Unique per event; consumers' idempotency key."},
        "ce_type": {"type": "string", "description": "finops.<stream>.<event>.v<major>"},
        "ce_source": {"type": "string"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string"},
        "content-type": {"type": "string", "enum": ["application/json", "application/vnd.apache.arrow.stream"]},
        "traceparent": {"type": "string", "description": "W3C trace context"},
    },
}


def _name(event: type[Event]) -> str:
    return event.__name__


def document(runtime: ServiceRuntime, *, service: str) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}

    def add_message(topic: Topic, event: type[Event]) -> dict[str, str]:
        channel = channels.setdefault(
            topic.name,
            {
                "address": topic.name,
                "description": topic.description,
                "messages": {},
                "bindings": {"kafka": {"partitions": topic.partitions, "bindingVersion": "0.5.0"}},
            },
        )
        channel["messages"][_name(event)] = {"$ref": f"#/components/messages/{_name(event)}"}
        schema = event.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[_name(event)] = schema
        message = messages[_name(event)] = {
            "name": event.TYPE,
            "title": _name(event),
            "summary": (event.__doc__ or "").strip().splitlines()[0],
            "contentType": event.CONTENT_TYPE,
            "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
            "payload": {"$ref": f"#/components/schemas/{_name(event)}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": topic.key}, "bindingVersion": "0.5.0"}},
        }
        if event.CONTENT_TYPE == ARROW_STREAM:
            line = CostLine.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
            schemas.update(line.pop("$defs", {}))
            schemas["CostLine"] = line
            message["description"] = (
                "An Arrow IPC stream (LZ4 buffers). The payload schema below travels as JSON in the stream's "
                "`finops.batch` schema metadata; the lines are its record batches, one column per CostLine field."
            )
            message["x-arrow-schema"] = {
                "lines": {"$ref": "#/components/schemas/CostLine"},
                "columns": {f.name: str(f.type) for f in COST_LINE_SCHEMA},
            }
        return {"$ref": f"#/channels/{topic.name}/messages/{_name(event)}"}

    for event in runtime.publishes:
        ref = add_message(event.TOPIC, event)
        operations[f"send{_name(event)}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{event.TOPIC.name}"},
            "summary": f"{service} publishes {event.TYPE} through its transactional outbox.",
            "messages": [ref],
        }
    for topic, group, types in runtime.subscriptions:
        refs = [add_message(BY_NAME[topic.name], EVENT_TYPES[t]) for t in types]
        operations[f"receive{topic.name.replace('.', '_')}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{topic.name}"},
            "summary": f"{service} consumes in group {group}; invalid records go to {topic.dlq}.",
            "messages": refs,
            "bindings": {"kafka": {"groupId": {"type": "string", "enum": [group]}, "bindingVersion": "0.5.0"}},
        }
    schemas["CloudEventHeaders"] = _HEADERS
    return {
        "asyncapi": "3.0.0",
        "info": {"title": f"finops {service}", "version": "1.0.0", "description": runtime.description},
        "defaultContentType": "application/json",
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {"messages": dict(sorted(messages.items())), "schemas": dict(sorted(schemas.items()))},
    }


def render(service: str) -> str:
    module, _, attr = SERVICES[service].partition(":")
    build = getattr(importlib.import_module(module), attr)
    runtime = build(database_url="postgresql://unused/unused", kafka_bootstrap_servers="unused:9092")
    return json.dumps(document(runtime, service=service), indent=2, sort_keys=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate the services' AsyncAPI documents.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, metavar="DIR")
    group.add_argument("--check", type=Path, metavar="DIR")
    args = parser.parse_args()
    stale = []
    for service in SERVICES:
        text = render(service)
        path = (args.write or args.check) / f"{service}.json"
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(str(path))
    if stale:
        sys.exit(f"stale AsyncAPI documents: {', '.join(stale)}; run `make asyncapi` and commit them")


if __name__ == "__main__":
    main()
