"""Signed webhooks: HMAC-SHA256 over `<timestamp>.<body>`, with a replay window.

Every webhook request carries:

    X-Finops-Timestamp: 1767225600                  (Unix seconds when it was signed)
    X-Finops-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>
    Idempotency-Key:    <the same for every retry of one delivery>

`verify` is the reference verifier: receivers copy it (it needs only the standard library).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP = "X-Finops-Timestamp"
SIGNATURE = "X-Finops-Signature"
IDEMPOTENCY_KEY = "Idempotency-Key"
TOLERANCE_S = 300


class InvalidSignature(Exception):
    """The request was not signed with the shared secret, was altered, or is too old to accept."""


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    return "v1=" + hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, *, idempotency_key: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers that sign `body`."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP: str(ts), SIGNATURE: signature(secret, ts, body), IDEMPOTENCY_KEY: idempotency_key}


def verify(
    secret: bytes, headers: Mapping[str, str], body: bytes, *, now: float | None = None, tolerance_s: int = TOLERANCE_S
) -> int:
    """Check a received webhook; return its timestamp, or raise InvalidSignature saying why."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ts = lowered.get(TIMESTAMP.lower())
    sent = lowered.get(SIGNATURE.lower())
    if raw_ts is None or sent is None:
        raise InvalidSignature(f"missing {TIMESTAMP} or {SIGNATURE} header")
    try:
        ts = int(raw_ts)
    except ValueError:
        raise InvalidSignature(f"{TIMESTAMP} must be Unix seconds, got {raw_ts!r}") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise InvalidSignature(f"timestamp {ts} is outside the {tolerance_s}s replay window")
    expected = signature(secret, ts, body)
    # Several signatures may be sent during a secret rotation: any one matching is enough.
    if not any(hmac.compare_digest(expected, s.strip()) for s in sent.split(",")):
        raise InvalidSignature("signature does not match the body and timestamp")
    return ts
