"""Prometheus metrics every service exports on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "finops_events_consumed_total",
    "Events taken from Kafka, by outcome (processed, duplicate, dead_lettered, skipped).",
    ["service", "topic", "outcome"],
)
EVENTS_PUBLISHED = Counter(
    "finops_events_published_total", "Events the outbox relay published to Kafka.", ["service", "topic"]
)
DEAD_LETTERS = Counter("finops_dead_letters_total", "Events sent to a dead-letter topic.", ["service", "topic"])
HANDLER_SECONDS = Histogram(
    "finops_handler_seconds",
    "Time to process one polled batch of events, transaction included.",
    ["service", "topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TRANSIENT_RETRIES = Counter(
    "finops_transient_retries_total", "Retries after a transient failure (database, network).", ["service", "topic"]
)
CONSUMER_LAG = Gauge(
    "finops_consumer_lag", "Records behind the high watermark after the last poll.", ["service", "topic", "partition"]
)
OUTBOX_PUBLISH_SECONDS = Histogram(
    "finops_outbox_publish_seconds",
    "Time for the relay to publish and delete one chunk of outbox rows.",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
