"""The outbound HTTP client against a raw local server: it keeps connections alive and reuses them, reads chunked
and length-framed answers, sends again on a fresh connection when the server dropped an idle one, never follows
a redirect, refuses private addresses unless allowlisted (checking the address it connects to), and gives up at
its timeout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from finops_notify import targets, transport

Reply = Callable[[bytes], bytes | None]
"""From a request's bytes to the raw answer; None closes the connection without answering."""


def length_framed(status: int = 200, body: bytes = b"ok") -> bytes:
    return b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (status, len(body)) + body


def chunked(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"


@contextlib.asynccontextmanager
async def raw_server(reply: Reply, *, close_after: int | None = None) -> AsyncIterator[tuple[str, dict]]:
    """A server answering each request with reply(request); it closes a connection after `close_after` answers."""
    seen: dict = {"connections": 0, "requests": []}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["connections"] += 1
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.lower().split(b"\r\n")
                length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
                request = head + await reader.readexactly(length)
                seen["requests"].append(request)
                answer = reply(request)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                answered += 1
                if close_after is not None and answered >= close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()
        await server.wait_closed()


def client(**kw) -> transport.HttpClient:
    return transport.HttpClient(timeout_s=kw.pop("timeout_s", 5), allowlist=kw.pop("allowlist", {"127.0.0.1"}), **kw)


async def test_connections_are_kept_alive_and_answers_read_whatever_their_framing():
    answers = iter([length_framed(201, b"created"), chunked(b"streamed"), length_framed(503, b"busy")])
    async with raw_server(lambda _: next(answers)) as (url, seen):
        c = client()

        first = await c.post(f"{url}/hook?x=1", b'{"a":1}', {"X-Test": "1"})
        second = await c.post(f"{url}/hook", b"{}", {})
        third = await c.post(f"{url}/hook", b"{}", {})
        await c.aclose()

    assert (first.status, first.text) == (201, "created")
    assert (second.status, second.text) == (200, "streamed")
    assert (third.status, third.text) == (503, "busy")
    assert seen["connections"] == 1
    request = seen["requests"][0]
    assert request.startswith(b"POST /hook?x=1 HTTP/1.1\r\n") and request.endswith(b'\r\n\r\n{"a":1}')
    assert b"x-test: 1\r\n" in request.lower()


async def test_a_request_on_a_connection_the_server_dropped_is_sent_again_on_a_fresh_one():
    async with raw_server(lambda _: length_framed(), close_after=1) as (url, seen):
        c = client()

        await c.post(f"{url}/hook", b"1", {})
        await asyncio.sleep(0.05)  # the server has closed the idle connection
        again = await c.post(f"{url}/hook", b"2", {})
        await c.aclose()

    assert again.status == 200 and seen["connections"] == 2 and len(seen["requests"]) == 2


async def test_a_connection_closed_without_an_answer_is_an_error_not_a_retry_when_fresh():
    async with raw_server(lambda _: None) as (url, _):
        with pytest.raises(transport.TransportError):
            await client().post(f"{url}/hook", b"{}", {})


async def test_a_redirect_is_an_answer_not_followed():
    moved = b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n"
    async with raw_server(lambda _: moved) as (url, seen):
        response = await client().post(f"{url}/hook", b"{}", {})

    assert response.status == 302 and len(seen["requests"]) == 1


async def test_private_addresses_are_refused_unless_allowlisted():
    async with raw_server(lambda _: length_framed()) as (url, seen):
        with pytest.raises(targets.TargetRefused, match="loopback, private or reserved"):
            await client(allowlist=set()).post(f"{url}/hook", b"{}", {})

    assert seen["connections"] == 0


async def test_an_endpoint_that_does_not_answer_times_out():
    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    server = await asyncio.start_server(never, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TimeoutError):
            await client(timeout_s=0.2).post(f"http://127.0.0.1:{port}/hook", b"{}", {})
    finally:
        server.close()
