"""The Kafka settings fail closed (an incomplete secure configuration refuses to load), the clients get the
security they name, and the durability of new topics follows the cluster's size or the settings."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faststream.security import SASLScram512
from pydantic import ValidationError

from finops_runtime import kafka
from finops_runtime.settings import KafkaSettings, Settings


def test_sasl_ssl_needs_a_username_and_a_password() -> None:
    with pytest.raises(ValidationError, match="FINOPS_KAFKA_SASL_USERNAME"):
        KafkaSettings(security_protocol="SASL_SSL", sasl_username="decision")


def test_the_password_file_wins_and_a_missing_one_is_named(tmp_path: Path) -> None:
    secret = tmp_path / "decision.password"
    secret.write_text("s3cret\n")
    config = KafkaSettings(security_protocol="SASL_SSL", sasl_username="decision", sasl_password_file=secret)
    assert config.sasl_password is not None and config.sasl_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)
    with pytest.raises(ValidationError, match="FINOPS_KAFKA_SASL_PASSWORD_FILE"):
        KafkaSettings(security_protocol="SASL_SSL", sasl_username="d", sasl_password_file=tmp_path / "missing")


def test_a_client_certificate_needs_its_key_and_ssl() -> None:
    with pytest.raises(ValidationError, match="FINOPS_KAFKA_SSL_KEYFILE"):
        KafkaSettings(security_protocol="SSL", ssl_certfile=Path("c.pem"))
    with pytest.raises(ValidationError, match="SECURITY_PROTOCOL=SSL"):
        KafkaSettings(ssl_certfile=Path("c.pem"), ssl_keyfile=Path("k.pem"))


def test_settings_read_the_kafka_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("DATABASE_URL", "postgresql://unused/unused")
    monkeypatch.setenv("FINOPS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("FINOPS_KAFKA_SASL_USERNAME", "ingest")
    monkeypatch.setenv("FINOPS_KAFKA_SASL_PASSWORD", "pw")
    monkeypatch.setenv("FINOPS_KAFKA_REPLICATION_FACTOR", "3")
    settings = Settings()
    assert (settings.kafka.security_protocol, settings.kafka.sasl_username) == ("SASL_SSL", "ingest")
    assert settings.kafka.replication_factor == 3
    security = kafka.broker_security(settings.kafka)
    assert isinstance(security, SASLScram512) and security.username == "ingest"
    assert isinstance(security.ssl_context, ssl.SSLContext) and security.ssl_context.check_hostname
    options = kafka.client_options(settings.kafka)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512" and options["security_protocol"] == "SASL_SSL"


def test_plaintext_is_the_default() -> None:
    assert kafka.broker_security(KafkaSettings()) is None
    assert kafka.client_options(KafkaSettings()) == {"security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize(("brokers", "expected"), [(1, (1, 1)), (2, (1, 1)), (3, (3, 2)), (5, (3, 2))])
def test_durability_follows_the_cluster(brokers: int, expected: tuple[int, int]) -> None:
    assert kafka.durability(KafkaSettings(), brokers) == expected


def test_durability_settings_win_and_are_checked() -> None:
    assert kafka.durability(KafkaSettings(replication_factor=2, min_insync_replicas=1), 3) == (2, 1)
    with pytest.raises(ValueError, match="exceeds the cluster's 1 broker"):
        kafka.durability(KafkaSettings(replication_factor=3), 1)
    with pytest.raises(ValueError, match="min.insync.replicas 2"):
        kafka.durability(KafkaSettings(min_insync_replicas=2), 1)  # the default factor on one broker is 1
    with pytest.raises(ValidationError, match="cannot exceed FINOPS_KAFKA_REPLICATION_FACTOR"):
        KafkaSettings(replication_factor=1, min_insync_replicas=2)
