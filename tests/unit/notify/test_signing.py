"""The reference verifier accepts what the service signs, and refuses a tampered body, an old timestamp, another
secret or missing headers."""

from __future__ import annotations

import pytest

from finops_notify import signing

SECRET = b"whsec_test"
BODY = b'{"id":"e1","title":"Budget crossed"}'
NOW = 1_767_225_600


def test_a_signed_body_verifies():
    headers = signing.sign(SECRET, BODY, idempotency_key="delivery-1", timestamp=NOW)

    assert signing.verify(SECRET, headers, BODY, now=NOW + 10) == NOW
    assert headers[signing.IDEMPOTENCY_KEY] == "delivery-1"


def test_a_tampered_body_fails():
    headers = signing.sign(SECRET, BODY, idempotency_key="d", timestamp=NOW)

    with pytest.raises(signing.InvalidSignature, match="does not match"):
        signing.verify(SECRET, headers, BODY.replace(b"Budget", b"Budgie"), now=NOW)


def test_an_old_timestamp_fails_even_with_a_valid_signature():
    headers = signing.sign(SECRET, BODY, idempotency_key="d", timestamp=NOW - 301)

    with pytest.raises(signing.InvalidSignature, match="replay window"):
        signing.verify(SECRET, headers, BODY, now=NOW)


def test_a_rewritten_timestamp_fails():
    headers = signing.sign(SECRET, BODY, idempotency_key="d", timestamp=NOW - 3600)
    headers[signing.TIMESTAMP] = str(NOW)

    with pytest.raises(signing.InvalidSignature, match="does not match"):
        signing.verify(SECRET, headers, BODY, now=NOW)


def test_another_secret_or_no_headers_fail():
    headers = signing.sign(SECRET, BODY, idempotency_key="d", timestamp=NOW)

    with pytest.raises(signing.InvalidSignature):
        signing.verify(b"other", headers, BODY, now=NOW)
    with pytest.raises(signing.InvalidSignature, match="missing"):
        signing.verify(SECRET, {}, BODY, now=NOW)


def test_headers_are_matched_case_insensitively_and_any_rotated_signature_counts():
    headers = signing.sign(SECRET, BODY, idempotency_key="d", timestamp=NOW)
    lowered = {k.lower(): v for k, v in headers.items()}
    lowered["x-finops-signature"] = "v1=deadbeef, " + lowered["x-finops-signature"]

    assert signing.verify(SECRET, lowered, BODY, now=NOW) == NOW
