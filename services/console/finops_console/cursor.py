"""Opaque cursors for keyset pagination: the sort key of the last row served, which only the console reads."""

from __future__ import annotations

import base64
import binascii
import json


class BadCursor(ValueError):
    """A cursor this endpoint did not issue (or issued for another query)."""


def encode(kind: str, key: list[object]) -> str:
    raw = json.dumps([kind, key], separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str, *, length: int) -> list[object]:
    """The key inside `cursor`; BadCursor unless it came from this kind of page with `length` parts."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found_kind, key = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadCursor("cursor is not one this API issued; pass next_cursor from the previous page as is") from exc
    if found_kind != kind or not isinstance(key, list) or len(key) != length:
        raise BadCursor("cursor belongs to another query; start again without cursor")
    if not all(isinstance(part, str | int | None) for part in key):
        raise BadCursor("cursor is not one this API issued; pass next_cursor from the previous page as is")
    return key
