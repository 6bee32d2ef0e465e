"""Running services for tests: in this process (uvicorn on a free port) or as real OS processes that a test
can kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_until(check: Callable[[], Awaitable[Any]], *, timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail the test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


async def wait_ready(base_url: str, *, timeout: float = 60, process: subprocess.Popen | None = None) -> None:
    async with httpx.AsyncClient(timeout=5) as client:

        async def ready() -> bool:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"service at {base_url} exited with {process.returncode} before it was ready")
            try:
                return (await client.get(f"{base_url}/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(ready, timeout=timeout, what=f"{base_url}/ready")


@contextlib.asynccontextmanager
async def serve_in_process(app: Any, port: int) -> AsyncIterator[str]:
    """Serve an ASGI app (a service's create_app) on 127.0.0.1:port inside the test's event loop."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base)
        yield base
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


class ServiceProcess:
    """A service as its own OS process (`python -m <module>`), logging to a file."""

    def __init__(
        self,
        module: str,
        *,
        env: dict[str, str],
        log_dir: Path,
        name: str | None = None,
        args: tuple[str, ...] = (),
        http: bool = True,
    ) -> None:
        self.module = module
        self.args = args
        self.http = http
        self.name = name or module
        self.port = free_port()
        self.env = {**os.environ, **env, "FINOPS_HTTP_PORT": str(self.port), "FINOPS_LOG_FORMAT": "text"}
        self.log_path = log_dir / f"{self.name}.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, *, extra_env: dict[str, str] | None = None, wait: bool = True) -> ServiceProcess:
        """Start the process; unless `wait` is False, return once it answers /ready. A process armed to die at a
        fault point may reach it while starting up (resuming earlier work), so chaos tests start those unwaited."""
        self.starts += 1
        log = self.log_path.open("a")
        log.write(f"\n===== start {self.starts} =====\n")
        log.flush()
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            env={**self.env, "FINOPS_INSTANCE_ID": f"{self.name}-{self.starts}", **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if self.http and wait:
            await wait_ready(self.url, process=self.process)
        return self

    async def wait_exit(self, timeout: float) -> int:
        assert self.process is not None

        async def exited() -> bool:
            return self.process.poll() is not None

        await wait_until(exited, timeout=timeout, what=f"{self.name} to exit")
        return self.process.returncode

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
