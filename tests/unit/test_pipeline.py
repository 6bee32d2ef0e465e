"""The worker-thread pipeline ingest reads files through: order kept, errors raised to the consumer, and a
consumer that stops early stops the producer."""

from __future__ import annotations

import contextlib
import threading

import pytest

from finops_ingest.pipeline import in_thread


async def test_items_arrive_in_order_and_are_produced_in_another_thread():
    threads = set()

    def produce():
        for i in range(50):
            threads.add(threading.get_ident())
            yield i

    assert [i async for i in in_thread(produce, depth=2)] == list(range(50))
    assert threads and threading.get_ident() not in threads


async def test_the_producers_error_is_raised_after_the_items_before_it():
    def produce():
        yield 1
        raise ValueError("row 7 is bad")

    seen = []
    with pytest.raises(ValueError, match="row 7 is bad"):
        async for item in in_thread(produce):
            seen.append(item)
    assert seen == [1]


async def test_leaving_early_stops_the_producer():
    produced = []

    def produce():
        for i in range(10_000):
            produced.append(i)
            yield i

    async with contextlib.aclosing(in_thread(produce, depth=2)) as items:
        async for item in items:
            if item == 3:
                break
    count = len(produced)
    assert count < 10
    assert len(produced) == count, "the producer thread has ended"
