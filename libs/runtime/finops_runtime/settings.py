"""Settings from the environment. Endpoints use their conventional names; the rest are FINOPS_*."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from finops_runtime.oidc import OidcSettings


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class KafkaSettings(BaseSettings):
    """How every Kafka client of the runtime connects (FINOPS_KAFKA_*), and how durable the topics it creates are.

    Kafka is a trust boundary that moves money, so a production cluster authenticates every client:
    SASL_SSL with SCRAM-SHA-512 (username and password) or SSL with a client certificate (mTLS). PLAINTEXT is
    for a local broker only. A separate model (not fields of Settings) so raw clients, tools and tests read
    the same variables without needing a database URL."""

    model_config = SettingsConfigDict(env_prefix="FINOPS_KAFKA_", extra="ignore")

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-512"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    """A file holding the password (a mounted secret), read at start; wins over FINOPS_KAFKA_SASL_PASSWORD."""
    ssl_cafile: Path | None = None
    """PEM CA bundle the broker certificates are checked against; the system's CAs when unset."""
    ssl_certfile: Path | None = None
    """PEM client certificate (mTLS); with FINOPS_KAFKA_SSL_KEYFILE."""
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = True

    replication_factor: int | None = Field(default=None, ge=1)
    """Replicas of each topic the runtime creates; unset: 3 on a cluster of at least 3 brokers, else 1."""
    min_insync_replicas: int | None = Field(default=None, ge=1)
    """min.insync.replicas of each topic it creates; unset: 2 on a cluster of at least 3 brokers, else 1."""

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.sasl_password_file is not None:
            try:
                secret = self.sasl_password_file.read_text().strip()
            except OSError as exc:
                raise ValueError(f"FINOPS_KAFKA_SASL_PASSWORD_FILE {self.sasl_password_file}: {exc.strerror}") from exc
            self.sasl_password = SecretStr(secret)
        if self.security_protocol == "SASL_SSL" and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                "FINOPS_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs FINOPS_KAFKA_SASL_USERNAME and "
                "FINOPS_KAFKA_SASL_PASSWORD or FINOPS_KAFKA_SASL_PASSWORD_FILE"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("set both FINOPS_KAFKA_SSL_CERTFILE and FINOPS_KAFKA_SSL_KEYFILE, or neither")
        if self.ssl_certfile is not None and self.security_protocol != "SSL":
            raise ValueError(
                "a client certificate (FINOPS_KAFKA_SSL_CERTFILE) is for FINOPS_KAFKA_SECURITY_PROTOCOL=SSL (mTLS)"
            )
        if self.replication_factor and self.min_insync_replicas and self.min_insync_replicas > self.replication_factor:
            raise ValueError("FINOPS_KAFKA_MIN_INSYNC_REPLICAS cannot exceed FINOPS_KAFKA_REPLICATION_FACTOR")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FINOPS_", extra="ignore")

    service_name: str = "finops"
    database_url: str = Field(validation_alias=AliasChoices("DATABASE_URL", "FINOPS_DATABASE_URL"))
    kafka_bootstrap_servers: str = Field(
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "FINOPS_KAFKA_BOOTSTRAP_SERVERS")
    )
    kafka_namespace: str = ""
    """Prefix of every topic and consumer group name, so environments (or tests) can share one cluster."""
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    """Security and topic durability, from the FINOPS_KAFKA_* variables (see KafkaSettings)."""
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    instance_id: str = Field(default_factory=_default_instance)

    db_pool_min: int = 1
    db_pool_max: int = 5

    relay_enabled: bool = True
    relay_batch_size: int = 2000
    relay_max_bytes: int = 32 << 20
    """Payload bytes the relay holds at once: bounds its memory when the outbox holds large cost batches."""
    relay_poll_interval_s: float = 1.0

    admin_token: str | None = None
    """FINOPS_ADMIN_TOKEN: a first admin token (stored hashed), to issue the others with POST /v1/tokens."""

    oidc: OidcSettings = Field(default_factory=OidcSettings)
    """FINOPS_OIDC_*: single sign-on (off unless FINOPS_OIDC_ISSUER is set); see docs/security-oidc.md."""

    consumer_max_records: int = 100
    consumer_retry_max_backoff_s: float = 30.0

    otel_exporter: Literal["none", "console", "otlp"] = "none"
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"

    def kafka_name(self, name: str) -> str:
        return f"{self.kafka_namespace}{name}"
