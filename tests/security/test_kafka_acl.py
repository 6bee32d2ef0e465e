"""Kafka is a trust boundary that moves money: on a secured broker (`deploy/local/dev.sh secure`, a real Kafka
with a SASL_SSL listener, an mTLS listener and the StandardAuthorizer), each service's principal may write only
its own topics. A principal without the ACL cannot write `finops.decision.v1` (the topic purchase acts on), the
decision principal can, bad credentials are refused, and the runtime's own client factory, configured by the
FINOPS_KAFKA_* settings, produces and consumes through it.

One secured broker serves the whole module, in its own FINOPS_LOCAL_DIR and on its own ports; when it cannot
start, the module fails (it never skips)."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from pydantic import SecretStr

from finops_contracts.topics import DECISION
from finops_runtime import kafka
from finops_runtime.settings import KafkaSettings, Settings
from tests.support.focus_files import ROOT
from tests.support.kafka import read_topic

DEV_SCRIPT = ROOT / "deploy" / "local" / "dev.sh"


@dataclass(frozen=True)
class SecureKafka:
    bootstrap: str
    """The SASL_SSL (SCRAM-SHA-512) listener."""
    credentials: Path
    """<principal>.env (SASL_SSL) and <service>.mtls.env (SSL with a client certificate) files."""
    cafile: Path

    def env_file(self, name: str) -> Path:
        return self.credentials / name

    def config(self, name: str) -> KafkaSettings:
        """The settings a process started with that credentials file would have."""
        return KafkaSettings(_env_file=self.env_file(name))

    def bootstrap_of(self, name: str) -> str:
        for line in self.env_file(name).read_text().splitlines():
            if line.startswith("KAFKA_BOOTSTRAP_SERVERS="):
                return line.partition("=")[2]
        raise AssertionError(f"{name} names no KAFKA_BOOTSTRAP_SERVERS")


def _dev_env(state: Path) -> dict[str, str]:
    # The secured broker is provisioned from its own state dir; nothing of the caller's Kafka identity leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINOPS_KAFKA_") or k == "FINOPS_KAFKA_VERSION"}
    env.update(FINOPS_LOCAL_DIR=str(state), FINOPS_LOCAL_PG="0", FINOPS_PYTHON=sys.executable)
    env.setdefault("FINOPS_KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m")
    return env


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    state = tmp_path_factory.mktemp("kafka-secure")
    env = _dev_env(state)
    started = subprocess.run(["bash", str(DEV_SCRIPT), "secure"], env=env, capture_output=True, text=True, timeout=600)
    try:
        if started.returncode != 0:
            raise RuntimeError(f"deploy/local/dev.sh secure failed ({started.returncode}):\n{started.stderr[-4000:]}")
        exports = {}
        for line in started.stdout.splitlines():
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                exports[name] = shlex.split(value)[0]
        assert exports["FINOPS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert "DATABASE_URL" not in exports  # FINOPS_LOCAL_PG=0: Kafka only
        yield SecureKafka(
            bootstrap=exports["KAFKA_BOOTSTRAP_SERVERS"],
            credentials=Path(exports["FINOPS_KAFKA_CREDENTIALS_DIR"]),
            cafile=Path(exports["FINOPS_KAFKA_SSL_CAFILE"]),
        )
    finally:
        subprocess.run(["bash", str(DEV_SCRIPT), "stop"], env=env, capture_output=True, timeout=120)


async def _write(bootstrap: str, config: KafkaSettings, topic: str, value: bytes) -> int:
    producer = kafka.create_producer(bootstrap, config=config, request_timeout_ms=15_000)
    await producer.start()
    try:
        metadata = await producer.send_and_wait(topic, value, key=b"acl-test")
        return metadata.offset
    finally:
        await producer.stop()


def test_credentials_files_hold_one_principal_each(secure_kafka: SecureKafka) -> None:
    """No default identity: the printed environment names the CA and where the files are, each file one
    principal; a password is referenced by file, never printed."""
    notify = secure_kafka.config("notify.env")
    assert (notify.security_protocol, notify.sasl_mechanism, notify.sasl_username) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
        "notify",
    )
    assert "PASSWORD=" not in secure_kafka.env_file("notify.env").read_text()
    mtls = secure_kafka.config("notify.mtls.env")
    assert mtls.security_protocol == "SSL" and mtls.ssl_certfile and mtls.ssl_keyfile
    assert oct(secure_kafka.env_file("notify.env").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("credentials", ["notify.env", "recommend.env", "purchase.env", "notify.mtls.env"])
async def test_a_principal_without_the_acl_cannot_write_decisions(secure_kafka: SecureKafka, credentials: str) -> None:
    """notify and purchase read finops.decision.v1, recommend reads it too: none of them may write it."""
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(secure_kafka.bootstrap_of(credentials), secure_kafka.config(credentials), DECISION.name, b"forged")


@pytest.mark.parametrize("credentials", ["decision.env", "decision.mtls.env"])
async def test_the_decision_principal_writes_decisions(secure_kafka: SecureKafka, credentials: str) -> None:
    marker = f"decided-{uuid.uuid4().hex}".encode()
    bootstrap, config = secure_kafka.bootstrap_of(credentials), secure_kafka.config(credentials)
    offset = await _write(bootstrap, config, DECISION.name, marker)
    assert offset >= 0
    # notify may read what it may not write.
    records = await read_topic(
        secure_kafka.bootstrap, DECISION.name, at_least=1, config=secure_kafka.config("notify.env")
    )
    assert marker in [r.value for r in records]


async def test_bad_credentials_are_refused(secure_kafka: SecureKafka, caplog: pytest.LogCaptureFixture) -> None:
    decision = secure_kafka.config("decision.env")
    wrong_password = decision.model_copy(update={"sasl_password": SecretStr("not-the-password")})
    with caplog.at_level(logging.ERROR), pytest.raises(KafkaConnectionError):
        await _write(secure_kafka.bootstrap, wrong_password, DECISION.name, b"x")
    assert "SaslAuthenticationFailed" in caplog.text and "invalid credentials" in caplog.text
    caplog.clear()

    # No TLS, no SASL: the listener closes the connection.
    with pytest.raises(KafkaConnectionError):
        await _write(secure_kafka.bootstrap, KafkaSettings(security_protocol="PLAINTEXT"), DECISION.name, b"x")

    # The mTLS listener requires a client certificate signed by the platform's CA.
    mtls = secure_kafka.bootstrap_of("decision.mtls.env")
    no_certificate = KafkaSettings(security_protocol="SSL", ssl_cafile=secure_kafka.cafile)
    with pytest.raises(KafkaConnectionError):
        await _write(mtls, no_certificate, DECISION.name, b"x")

    # The client checks the broker's certificate: without the platform's CA, the system's CAs refuse it.
    with caplog.at_level(logging.ERROR), pytest.raises(KafkaConnectionError):
        await _write(secure_kafka.bootstrap, decision.model_copy(update={"ssl_cafile": None}), DECISION.name, b"x")
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


def _settings(secure_kafka: SecureKafka, credentials: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A service's Settings read from the environment, as a process started with that credentials file."""
    with monkeypatch.context() as env:
        for line in secure_kafka.env_file(credentials).read_text().splitlines():
            name, _, value = line.partition("=")
            env.setenv(name, value)
        env.setenv("DATABASE_URL", "postgresql://unused/unused")
        return Settings()


async def test_the_runtime_produces_and_consumes_through_sasl_ssl(
    secure_kafka: SecureKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The brokers of the runtime's own factory, from Settings: decision publishes a decision, purchase consumes
    it in its consumer group, and purchase's broker may not publish one."""
    decision = _settings(secure_kafka, "decision.env", monkeypatch)
    purchase = _settings(secure_kafka, "purchase.env", monkeypatch)
    assert decision.kafka.security_protocol == purchase.kafka.security_protocol == "SASL_SSL"
    assert (decision.kafka.sasl_username, purchase.kafka.sasl_username) == ("decision", "purchase")
    # Topics exist already (dev.sh created them as admin): a least-privilege service only looks.
    await kafka.ensure_topics(purchase.kafka_bootstrap_servers, [DECISION], config=purchase.kafka)

    received: asyncio.Queue[bytes] = asyncio.Queue()
    consumer = kafka.create_broker(purchase.kafka_bootstrap_servers, client_id="purchase", config=purchase.kafka)

    @consumer.subscriber(DECISION.name, group_id="purchase", auto_offset_reset="earliest")
    async def on_decision(body: bytes) -> None:
        await received.put(body)

    publisher = kafka.create_broker(decision.kafka_bootstrap_servers, client_id="decision", config=decision.kafka)
    marker = f"approved-{uuid.uuid4().hex}".encode()
    await consumer.start()
    try:
        await publisher.connect()
        try:
            await publisher.publish(marker, DECISION.name, key=b"decision-1")
        finally:
            await publisher.stop()
        seen: list[bytes] = []
        async with asyncio.timeout(60):
            while marker not in seen:
                seen.append(await received.get())
        with pytest.raises(TopicAuthorizationFailedError):
            await consumer.publish(b"forged by purchase", DECISION.name, key=b"decision-2")
    finally:
        await consumer.stop()


async def test_a_service_runtime_started_from_the_environment_is_its_own_principal(
    secure_kafka: SecureKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    """purchase's ServiceRuntime, built as its process builds it (settings from the environment), connects
    over SASL_SSL as `purchase`: the broker answers, and it may not write decisions."""
    from finops_purchase.app import build_runtime

    for line in secure_kafka.env_file("purchase.env").read_text().splitlines():
        name, _, value = line.partition("=")
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", "postgresql://unused/unused")
    runtime = build_runtime()
    assert runtime.settings.kafka.sasl_username == "purchase"
    await runtime.broker.connect()
    try:
        assert await runtime.broker.ping(timeout=10)
        with pytest.raises(TopicAuthorizationFailedError):
            await runtime.broker.publish(b"forged by purchase", DECISION.name, key=b"decision-3")
    finally:
        await runtime.broker.stop()
