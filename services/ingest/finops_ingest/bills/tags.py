"""Provider tags and labels as one FOCUS Tags JSON object text: string keys (trimmed), string values."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal

from finops_ingest.bills.values import ValueRejected, plain


def merge(*sources: object) -> str | None:
    """Tags from any number of provider forms; later sources win on a repeated key. None when there are none."""
    tags: dict[str, str] = {}
    for source in sources:
        tags.update(parse(source))
    return json.dumps(tags, ensure_ascii=False, separators=(",", ":")) if tags else None


def parse(value: object) -> dict[str, str]:
    """One tag value: a JSON object (Azure's with or without outer braces), a map, or GCP key/value structs."""
    if value is None:
        return {}
    if isinstance(value, str):
        raw = value.strip()
        if raw in ("", "{}", '""', "NULL", "null", "[]"):
            return {}
        if not raw.startswith(("{", "[")):
            raw = "{" + raw + "}"  # Azure EA writes the object's members without the braces
        try:
            value = json.loads(raw, parse_float=Decimal)
        except json.JSONDecodeError:
            raise ValueRejected("not a JSON object of tags", value) from None
    value = plain(value)
    if isinstance(value, list):
        return dict(_pairs(value, original=value))
    if not isinstance(value, Mapping):
        raise ValueRejected("not a JSON object of tags", str(value))
    return {str(k).strip(): _text(v) for k, v in value.items()}


def _pairs(items: Iterable[object], *, original: object) -> Iterable[tuple[str, str]]:
    for item in items:
        if not isinstance(item, Mapping) or "key" not in item:
            raise ValueRejected("not a list of key/value labels", json.dumps(original, default=str)[:200])
        yield str(item["key"]).strip(), _text(item.get("value"))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float | Decimal) else json.dumps(value, ensure_ascii=False)


def column_tags(record: Mapping[str, object], prefix: str, *, strip: tuple[str, ...] = ()) -> dict[str, str]:
    """One column per tag (AWS `resourceTags/user:team`, OCI `tags/ns.key`): key = column minus the prefix."""
    tags: dict[str, str] = {}
    for name, value in record.items():
        if not name.startswith(prefix) or value is None or value == "":
            continue
        key = name[len(prefix) :]
        for marker in strip:
            if key.startswith(marker):
                key = key[len(marker) :]
                break
        tags[key.strip()] = _text(value.strip() if isinstance(value, str) else value)
    return tags
