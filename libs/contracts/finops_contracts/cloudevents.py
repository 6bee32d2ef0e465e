"""CloudEvents 1.0 in Kafka binary mode: attributes travel as `ce_*` headers, the payload is the data."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"


class InvalidEnvelope(ValueError):
    """A Kafka record whose headers are not a valid CloudEvent; the producer must fix what it sends."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """The CloudEvents attributes of one record. `id` is the idempotency key of every consumer."""

    id: uuid.UUID
    type: str
    source: str
    time: datetime
    subject: str | None = None
    content_type: str = CONTENT_TYPE
    extensions: dict[str, str] = field(default_factory=dict)

    def to_headers(self) -> dict[str, str]:
        headers = {
            "ce_specversion": SPEC_VERSION,
            "ce_id": str(self.id),
            "ce_type": self.type,
            "ce_source": self.source,
            "ce_time": self.time.isoformat(),
            "content-type": self.content_type,
        }
        if self.subject is not None:
            headers["ce_subject"] = self.subject
        headers.update(self.extensions)
        return headers

    @classmethod
    def from_headers(cls, headers: dict[str, str]) -> Envelope:
        """Read the attributes back; raise InvalidEnvelope naming the header that is wrong."""
        if headers.get("ce_specversion") != SPEC_VERSION:
            raise InvalidEnvelope(
                f"header ce_specversion is {headers.get('ce_specversion')!r}, expected {SPEC_VERSION!r}"
            )
        for name in ("ce_id", "ce_type", "ce_source", "ce_time"):
            if not headers.get(name):
                raise InvalidEnvelope(f"required header {name} is missing")
        try:
            event_id = uuid.UUID(headers["ce_id"])
        except ValueError as exc:
            raise InvalidEnvelope(f"header ce_id {headers['ce_id']!r} is not a UUID") from exc
        try:
            time = datetime.fromisoformat(headers["ce_time"])
        except ValueError as exc:
            raise InvalidEnvelope(f"header ce_time {headers['ce_time']!r} is not an RFC 3339 time") from exc
        return cls(
            id=event_id,
            type=headers["ce_type"],
            source=headers["ce_source"],
            time=time,
            subject=headers.get("ce_subject"),
            content_type=headers.get("content-type", CONTENT_TYPE),
        )


def now() -> datetime:
    return datetime.now(UTC)
