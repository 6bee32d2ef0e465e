"""Secrets at rest: webhook signing secrets are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key
derived from FINOPS_NOTIFY_SECRET_KEY. Only ciphertext reaches the database; nothing here logs."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken


class SecretKeyMissing(Exception):
    """Secrets cannot be stored without a key: set FINOPS_NOTIFY_SECRET_KEY to a long random string."""


class Vault:
    def __init__(self, key: str | None) -> None:
        self._fernet = (
            Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"finops-notify/" + key.encode()).digest())) if key else None
        )

    def _box(self) -> Fernet:
        if self._fernet is None:
            raise SecretKeyMissing("set FINOPS_NOTIFY_SECRET_KEY to a long random string to store webhook secrets")
        return self._fernet

    def seal(self, secret: bytes) -> bytes:
        return self._box().encrypt(secret)

    def open(self, sealed: bytes) -> bytes:
        try:
            return self._box().decrypt(sealed)
        except InvalidToken:
            raise SecretKeyMissing("a stored secret does not decrypt: FINOPS_NOTIFY_SECRET_KEY changed") from None


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)
