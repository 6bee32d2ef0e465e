"""Delivery policy as pure functions: retry backoff with jitter, the circuit breaker's next state, quiet
hours and rate windows. The worker applies them to the rows it claims."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

SEVERITIES = ("info", "warning", "critical")


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 8
    base_s: float = 2.0
    cap_s: float = 600.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds before attempt `attempt + 1`: exponential, capped, with "equal jitter" (half fixed, half random)
        so endpoints that failed together are not retried together."""
        ceiling = min(self.cap_s, self.base_s * 2 ** max(attempt - 1, 0))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Breaker:
    threshold: int = 5
    cooldown_s: float = 30.0

    def after(self, failures: int, succeeded: bool, now: datetime) -> tuple[int, datetime | None]:
        """(consecutive failures, open until) once an attempt ends. A success closes the circuit; `threshold`
        failures in a row open it for `cooldown_s`, after which one attempt probes it (half-open)."""
        if succeeded:
            return 0, None
        failures += 1
        if failures >= self.threshold:
            return failures, now + timedelta(seconds=self.cooldown_s)
        return failures, None


def quiet_until(now: datetime, start: time | None, end: time | None, zone: str) -> datetime | None:
    """The end of the quiet hours `now` falls in (an aware datetime), or None when delivery may go now.
    Quiet hours may span midnight (22:00-07:00)."""
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(ZoneInfo(zone))
    t = local.time().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    ends = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends


def rate_window(now: datetime) -> datetime:
    """The minute a send counts against."""
    return now.replace(second=0, microsecond=0)


CHANNEL_RATE_PER_MINUTE = {"email": 30, "slack": 60, "teams": 60, "webhook": 600}
"""Default per-subscriber sends a minute per channel (Slack allows about one message a second per webhook)."""
