"""Least-privilege Kafka ACLs for the services, derived from what each service's runtime declares (the same
source as its AsyncAPI document), never from a list typed by hand:

- WRITE on the topics it publishes through its outbox, and on the dead-letter topic of each topic it consumes
  (its Inbox sends invalid records there);
- READ on the topics it consumes, and READ on its consumer groups;
- DESCRIBE on the other topics its runtime provisions at start, so `ensure_topics` sees that they exist.

The console also DESCRIBEs every topic and group: its pipeline view reads end offsets and consumer lag.
Each service's principal is `User:<service>`: its SCRAM username, or the CN of its mTLS certificate.

    python -m finops_runtime.kafka_acl principals                 # the service principals, one a line
    python -m finops_runtime.kafka_acl plan [--namespace NS]      # the ACLs, one a line
    python -m finops_runtime.kafka_acl apply --bootstrap HOST:PORT [--namespace NS]
        # as a super user (FINOPS_KAFKA_* credentials): create every topic, then the ACLs

aiokafka has no ACL API, so `apply` sends CreateAcls (v1) through its admin client's connection.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import sys
from dataclasses import dataclass

from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest

from finops_contracts.topics import TOPICS
from finops_runtime import kafka
from finops_runtime.settings import KafkaSettings


class Resource(enum.IntEnum):
    TOPIC = 2
    GROUP = 3


class Operation(enum.IntEnum):
    READ = 3
    WRITE = 4
    DESCRIBE = 8


class Pattern(enum.IntEnum):
    LITERAL = 3
    PREFIXED = 4


_ALLOW = 3
OBSERVERS = {"console"}
"""Services that may DESCRIBE every topic and group (end offsets and lag), beyond what they consume."""


@dataclass(frozen=True, order=True)
class Grant:
    principal: str
    resource: Resource
    name: str
    operation: Operation
    pattern: Pattern = Pattern.LITERAL

    def __str__(self) -> str:
        resource = f"{self.resource.name.lower()} {self.pattern.name.lower()} {self.name}"
        return f"{self.principal} {self.operation.name} {resource}"


def principals() -> list[str]:
    from finops_runtime.asyncapi import SERVICES

    return sorted(SERVICES)


def _runtime(service: str):  # type: ignore[no-untyped-def]
    import importlib

    from finops_runtime.asyncapi import SERVICES

    module, _, attr = SERVICES[service].partition(":")
    build = getattr(importlib.import_module(module), attr)
    return build(database_url="postgresql://unused/unused", kafka_bootstrap_servers="unused:9092")


def grants(service: str, *, namespace: str = "") -> set[Grant]:
    """What `service` may do, and nothing more."""
    runtime = _runtime(service)
    user = f"User:{service}"
    out: set[Grant] = set()

    def topic(name: str, op: Operation) -> None:
        out.add(Grant(user, Resource.TOPIC, namespace + name, op))

    for event in runtime.publishes:
        topic(event.TOPIC.name, Operation.WRITE)
    for subscribed, group, _types in runtime.subscriptions:
        topic(subscribed.name, Operation.READ)
        topic(subscribed.dlq, Operation.WRITE)
        out.add(Grant(user, Resource.GROUP, namespace + group, Operation.READ))
    for provisioned in runtime._topics:  # what ensure_topics lists at start
        for name in (provisioned.name, provisioned.dlq):
            topic(name, Operation.DESCRIBE)
    if service in OBSERVERS:
        for registered in TOPICS:
            for name in (registered.name, registered.dlq):
                topic(name, Operation.DESCRIBE)
        if namespace:
            out.add(Grant(user, Resource.GROUP, namespace, Operation.DESCRIBE, Pattern.PREFIXED))
        else:
            out.add(Grant(user, Resource.GROUP, "*", Operation.DESCRIBE))
    # WRITE and READ imply DESCRIBE: drop the redundant grants.
    stronger = {(g.resource, g.name) for g in out if g.operation is not Operation.DESCRIBE}
    return {g for g in out if g.operation is not Operation.DESCRIBE or (g.resource, g.name) not in stronger}


def plan(*, namespace: str = "") -> list[Grant]:
    return sorted(g for service in principals() for g in grants(service, namespace=namespace))


async def apply(bootstrap_servers: str, *, namespace: str = "", config: KafkaSettings | None = None) -> int:
    """Create every registry topic (and dead-letter topic), then every ACL of the plan; both are idempotent.
    Needs a super user's credentials. Returns how many ACLs the plan holds."""
    await kafka.ensure_topics(bootstrap_servers, TOPICS, namespace=namespace, config=config)
    admin = kafka.create_admin(bootstrap_servers, config=config, client_id="finops-acl")
    await admin.start()
    try:
        wanted = plan(namespace=namespace)

        async def create(grant: Grant) -> None:
            request = CreateAclsRequest(
                grant.resource, grant.name, grant.pattern, grant.principal, "*", grant.operation, _ALLOW
            )
            response = await admin._send_request(request)
            for code, message in response.creation_responses:
                if code:
                    raise RuntimeError(f"CreateAcls {grant}: {for_code(code).__name__} {message or ''}")

        await asyncio.gather(*(create(g) for g in wanted))
        return len(wanted)
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="The services' Kafka ACLs, from their runtimes.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("principals")
    for name in ("plan", "apply"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--namespace", default="", help="topic and group prefix (FINOPS_KAFKA_NAMESPACE)")
        if name == "apply":
            cmd.add_argument("--bootstrap", required=True)
    args = parser.parse_args()
    if args.command == "principals":
        print("\n".join(principals()))
    elif args.command == "plan":
        print("\n".join(str(g) for g in plan(namespace=args.namespace)))
    else:
        count = asyncio.run(apply(args.bootstrap, namespace=args.namespace))
        print(f"{count} ACLs in place for {len(principals())} service principals", file=sys.stderr)


if __name__ == "__main__":
    main()
