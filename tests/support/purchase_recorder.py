"""A real local HTTP server that records every request and answers from a script: stands in for Azure Resource
Manager, Compute Engine or an AWS endpoint in tests, so adapters are tested over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Recorder:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    script: list[tuple[str, str, int, Any]] = field(default_factory=list)
    """(method, path, status, JSON answer): the first entry matching a request's method and path answers it
    (and is used up); unmatched requests get 404."""

    def answer(self, method: str, path: str, status: int, body: Any = None) -> None:
        self.script.append((method, path, status, body))


@contextmanager
def recording_server() -> Iterator[Recorder]:
    recorder = Recorder()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                recorder.requests.append(
                    Recorded(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
                )
                match = next(
                    (i for i, (m, p, _, _) in enumerate(recorder.script) if m == self.command and p == parts.path), None
                )
                status, answer = (
                    (404, {"error": {"code": "NotFound"}}) if match is None else recorder.script.pop(match)[2:]
                )
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
