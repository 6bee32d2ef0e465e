"""Rows of an HTTP upload, CSV or JSON, whatever they hold (the contract commitment dataset, the metrics feed)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any


class UnreadableUpload(ValueError):
    """The body is neither CSV with a header nor a JSON list of row objects."""


def read_rows(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """Rows of an upload: CSV with a header (text/csv), or JSON (a list of objects, or {"rows": [...]})."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableUpload(f"the body is not UTF-8 text: {exc}") from exc
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json" or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise UnreadableUpload(f"the body is not valid JSON: {exc}") from exc
        if isinstance(data, dict):
            data = data.get("rows")
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise UnreadableUpload('send a JSON list of row objects, or {"rows": [...]}, or CSV with a header')
        return data
    if not text.strip():
        raise UnreadableUpload("the body is empty: send CSV with a header, or a JSON list of row objects")
    return list(csv.DictReader(io.StringIO(text)))
