"""Where the tests find real Kafka and PostgreSQL: the environment, else testcontainers when a Docker engine
answers, else the project's local provisioning (deploy/local/dev.sh). A missing service fails the run."""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from tests.support.focus_files import ROOT

DEV_SCRIPT = ROOT / "deploy" / "local" / "dev.sh"


@dataclass(frozen=True)
class Endpoints:
    kafka: str
    database_url: str
    provider: str


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _testcontainers() -> Iterator[Endpoints]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.postgres import PostgresContainer

    port = _free_port()
    kafka = (
        DockerContainer("apache/kafka:4.1.0")
        .with_bind_ports(9092, port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .with_env("KAFKA_NUM_PARTITIONS", "6")
    )
    with PostgresContainer("postgres:15", username="finops", password="finops", dbname="finops", driver=None) as pg:
        with kafka:
            wait_for_logs(kafka, "Kafka Server started", timeout=120)
            yield Endpoints(f"127.0.0.1:{port}", pg.get_connection_url(), "testcontainers")


@contextlib.contextmanager
def _local() -> Iterator[Endpoints]:
    already_up = subprocess.run(["bash", str(DEV_SCRIPT), "status"], capture_output=True).returncode == 0
    result = subprocess.run(["bash", str(DEV_SCRIPT), "start"], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"deploy/local/dev.sh start failed ({result.returncode}):\n{result.stderr[-4000:]}")
    values = {}
    for line in result.stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = shlex.split(value)[0] if value else ""
    try:
        yield Endpoints(values["KAFKA_BOOTSTRAP_SERVERS"], values["DATABASE_URL"], "local")
    finally:
        if not already_up:
            subprocess.run(["bash", str(DEV_SCRIPT), "stop"], capture_output=True, timeout=120)


@contextlib.contextmanager
def provide() -> Iterator[Endpoints]:
    kafka, database = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("DATABASE_URL")
    if kafka and database:
        yield Endpoints(kafka, database, "environment")
    elif _docker_answers():
        with _testcontainers() as endpoints:
            yield endpoints
    else:
        with _local() as endpoints:
            yield endpoints
