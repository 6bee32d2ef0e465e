"""Running a blocking producer (read, type, batch and encode a bill) in a worker thread, so that the event loop
keeps the database busy with the previous blocks meanwhile. Arrow releases the GIL in its kernels, so on two
cores the file work and PostgreSQL's COPY overlap instead of taking turns."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


async def in_thread(produce: Callable[[], Iterator[T]], *, depth: int = 4) -> AsyncIterator[T]:
    """Yield what `produce()` yields, computed in a thread at most `depth` items ahead of the consumer.
    The producer's exception is raised here; leaving the loop early stops the producer at its next item.
    The thread runs in a copy of the caller's context, so the current trace span stays current there."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
    slots = threading.Semaphore(depth)
    stopped = threading.Event()

    def put(item: object, error: BaseException | None = None) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (item, error))

    def run() -> None:
        try:
            for item in produce():
                while not slots.acquire(timeout=0.1):
                    if stopped.is_set():
                        return
                if stopped.is_set():
                    return
                put(item)
            put(_END)
        except BaseException as error:
            put(_END, error)

    worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), name="ingest-file", daemon=True)
    worker.start()
    try:
        while True:
            item, error = await queue.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item  # type: ignore[misc]
            slots.release()
    finally:
        stopped.set()
        await asyncio.to_thread(worker.join)
