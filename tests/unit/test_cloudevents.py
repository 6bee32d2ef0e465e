import uuid
from datetime import UTC, datetime

import pytest

from finops_contracts.cloudevents import Envelope, InvalidEnvelope


def test_envelope_round_trips_through_kafka_headers():
    envelope = Envelope(
        id=uuid.uuid4(),
        type="finops.cost.batch_ingested.v1",
        source="/finops/ingest",
        time=datetime(2026, 11, 27, tzinfo=UTC),
        subject="123/2026-11",
    )

    headers = envelope.to_headers()

    assert headers["ce_specversion"] == "1.0"
    assert headers["content-type"] == "application/json"
    assert Envelope.from_headers(headers) == envelope


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ce_specversion": "0.3"}, "ce_specversion"),
        ({"ce_id": "not-a-uuid"}, "ce_id"),
        ({"ce_type": ""}, "ce_type"),
        ({"ce_time": "yesterday"}, "ce_time"),
    ],
)
def test_invalid_headers_name_the_header(change, message):
    headers = Envelope(id=uuid.uuid4(), type="t", source="s", time=datetime.now(UTC)).to_headers() | change

    with pytest.raises(InvalidEnvelope, match=message):
        Envelope.from_headers(headers)
