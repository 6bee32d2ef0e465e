"""Outbound HTTP for webhooks, Slack and Teams: HTTP/1.1 POSTs over kept-alive asyncio connections, framed and
parsed by h11.

Why not httpx: on this project's 2-core machine httpx spent about 2.8 ms of CPU per POST and this client about
0.3 ms (services/notify/README.md, "Throughput"), and at 10,000 events a minute to 100 subscribers the client
was most of the service's CPU.

Security: a new connection resolves the host, refuses loopback, private and reserved addresses unless the
allowlist names the host (targets.resolve), and connects to the very address it checked, so DNS cannot change
between the check and the connection. Connections are recycled after `max_age_s`, so a DNS change is seen within
that time. Redirects are never followed: a 3xx is an answer like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import h11

from finops_notify import targets

USER_AGENT = "finops-notify/1"
KEEP_BODY = 2048
"""Bytes of a response body kept for the delivery log; the rest is read and dropped."""


@dataclass(frozen=True)
class Response:
    status: int
    text: str
    """The start of the body, for error messages."""


class TransportError(Exception):
    """The request did not get a complete HTTP response: refused connection, reset, protocol error."""


class _Stale(Exception):
    """A kept-alive connection the server had closed: nothing was answered, so the request is sent again."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.opened = time.monotonic()

    def usable(self, max_age_s: float) -> bool:
        return (
            self.h11.our_state is h11.IDLE
            and not self.reader.at_eof()
            and not self.writer.is_closing()
            and time.monotonic() - self.opened < max_age_s
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    async def post(self, host_header: str, target: str, body: bytes, headers: Mapping[str, str]) -> Response:
        c = self.h11
        request = h11.Request(
            method="POST",
            target=target,
            headers=[
                ("Host", host_header),
                ("User-Agent", USER_AGENT),
                ("Content-Length", str(len(body))),
                *headers.items(),
            ],
        )
        try:
            self.writer.write(c.send(request) + c.send(h11.Data(data=body)) + c.send(h11.EndOfMessage()))
            await self.writer.drain()
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise _Stale(str(exc)) from exc
        status: int | None = None
        kept: list[bytes] = []
        size = 0
        answered = False
        while True:
            event = c.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await self.reader.read(65536)
                except ConnectionResetError as exc:
                    if not answered:
                        raise _Stale(str(exc)) from exc
                    raise
                if not data and not answered:
                    raise _Stale("the server closed the connection without answering")
                answered = True
                c.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                if size < KEEP_BODY:
                    kept.append(bytes(event.data[: KEEP_BODY - size]))
                    size += len(kept[-1])
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise TransportError("the server closed the connection before the response ended")
        if c.our_state is h11.DONE and c.their_state is h11.DONE:
            c.start_next_cycle()
        assert status is not None
        return Response(status, b"".join(kept).decode("utf-8", "replace"))


class HttpClient:
    """POSTs with keep-alive connections per origin (scheme, host, port)."""

    def __init__(
        self,
        *,
        timeout_s: float,
        allowlist: Collection[str],
        max_age_s: float = 60.0,
        max_idle_per_origin: int = 64,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._allowlist = frozenset(allowlist)
        self._max_age_s = max_age_s
        self._max_idle = max_idle_per_origin
        self._ssl = ssl_context or ssl.create_default_context(cafile=certifi.where())
        self._idle: dict[tuple[str, str, int], list[_Connection]] = defaultdict(list)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Response:
        """POST `body`; the response, or TargetRefused, TransportError, OSError, TimeoutError, h11.ProtocolError."""
        scheme, host, port = targets.split(url)
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default = 443 if scheme == "https" else 80
        name = f"[{host}]" if ":" in host else host
        host_header = name if port == default else f"{name}:{port}"
        origin = (scheme, host, port)
        async with asyncio.timeout(self._timeout_s):
            for _ in range(2):
                conn, reused = await self._acquire(origin)
                try:
                    response = await conn.post(host_header, path, body, headers)
                except _Stale as exc:
                    conn.close()
                    if reused:
                        continue  # the server dropped an idle connection: send once more on a fresh one
                    raise TransportError(str(exc)) from None
                except BaseException:
                    conn.close()
                    raise
                self._release(origin, conn)
                return response
        raise TransportError("the server closed two connections in a row without answering")

    async def _acquire(self, origin: tuple[str, str, int]) -> tuple[_Connection, bool]:
        idle = self._idle[origin]
        while idle:
            conn = idle.pop()
            if conn.usable(self._max_age_s):
                return conn, True
            conn.close()
        scheme, host, port = origin
        addresses = await targets.resolve(host, port, self._allowlist)
        error: OSError | None = None
        for address in addresses:
            try:
                reader, writer = await asyncio.open_connection(
                    address,
                    port,
                    ssl=self._ssl if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )
            except OSError as exc:
                error = exc
                continue
            return _Connection(reader, writer), False
        raise error or TransportError(f"{host} has no address to connect to")

    def _release(self, origin: tuple[str, str, int], conn: _Connection) -> None:
        idle = self._idle[origin]
        if conn.usable(self._max_age_s) and len(idle) < self._max_idle:
            idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
