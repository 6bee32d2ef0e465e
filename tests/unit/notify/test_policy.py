"""Backoff grows exponentially within its cap with jitter; the breaker opens after its threshold and closes on
success; quiet hours (also over midnight, in the subscriber's zone) hold deliveries until they end."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time

from finops_notify import policy


def test_backoff_doubles_within_jitter_and_respects_the_cap():
    retry = policy.Retry(base_s=2, cap_s=60)
    rng = random.Random(7)

    delays = [retry.delay(attempt, rng) for attempt in range(1, 9)]

    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(60, 2 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(retry.delay(3, random.Random(seed)), 6) for seed in range(20)}) > 1  # jittered


def test_the_breaker_opens_at_its_threshold_and_a_success_closes_it():
    breaker = policy.Breaker(threshold=3, cooldown_s=30)
    now = datetime(2026, 1, 1, tzinfo=UTC)

    assert breaker.after(0, False, now) == (1, None)
    assert breaker.after(1, False, now) == (2, None)
    failures, open_until = breaker.after(2, False, now)
    assert failures == 3 and open_until is not None and (open_until - now).total_seconds() == 30
    assert breaker.after(7, True, now) == (0, None)


def test_quiet_hours_over_midnight_in_the_subscribers_zone():
    start, end = time(22, 0), time(7, 0)
    # 23:30 in Paris (UTC+1 in January) is quiet until 07:00 Paris, 06:00 UTC.
    held = policy.quiet_until(datetime(2026, 1, 15, 22, 30, tzinfo=UTC), start, end, "Europe/Paris")
    assert held is not None and held.astimezone(UTC) == datetime(2026, 1, 16, 6, 0, tzinfo=UTC)
    # 12:00 Paris is not quiet.
    assert policy.quiet_until(datetime(2026, 1, 15, 11, 0, tzinfo=UTC), start, end, "Europe/Paris") is None
    # Same-day quiet hours, and none configured.
    assert policy.quiet_until(datetime(2026, 1, 15, 13, 0, tzinfo=UTC), time(12), time(14), "UTC") is not None
    assert policy.quiet_until(datetime(2026, 1, 15, 13, 0, tzinfo=UTC), None, None, "UTC") is None
