"""Settings from the environment. Endpoints use their conventional names; the rest are FINOPS_*."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FINOPS_", extra="ignore")

    service_name: str = "finops"
    database_url: str = Field(validation_alias=AliasChoices("DATABASE_URL", "FINOPS_DATABASE_URL"))
    kafka_bootstrap_servers: str = Field(
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "FINOPS_KAFKA_BOOTSTRAP_SERVERS")
    )
    kafka_namespace: str = ""
    """Prefix of every topic and consumer group name, so environments (or tests) can share one cluster."""
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

    consumer_max_records: int = 100
    consumer_retry_max_backoff_s: float = 30.0

    otel_exporter: Literal["none", "console", "otlp"] = "none"
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"

    def kafka_name(self, name: str) -> str:
        return f"{self.kafka_namespace}{name}"
