"""A real S3-compatible HTTP server for tests: moto's server as a subprocess on 127.0.0.1, on a free port. It
checks every request's signature against an IAM user it is given at start, so a badly signed request fails
here as it would against a real bucket."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.services import free_port

# Requests the server answers before it checks signatures: those that create the IAM user and its key.
_SETUP_REQUESTS = 3


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def client(self) -> Any:
        """A boto3 client of this server, to arrange buckets and objects independently of the code under test."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )


@contextlib.contextmanager
def s3_server(*, timeout: float = 30) -> Iterator[S3Server]:
    """Start `python -m moto.server` on 127.0.0.1, wait until it answers, yield it, and stop it."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="finops-s3-") as folder:
        log_path = Path(folder) / "moto.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_REQUESTS)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait(port, process, log_path, timeout)
            yield _with_user(f"http://127.0.0.1:{port}")
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait(port: int, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    # A TCP connection, not an HTTP request: the server counts requests before it starts checking signatures.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the S3 server exited with {process.returncode}:\n{log_path.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the S3 server on port {port} did not answer in {timeout}s:\n{log_path.read_text()[-2000:]}")


def _with_user(endpoint_url: str) -> S3Server:
    """Create an IAM user allowed s3:* and an access key for it, in the server's first (unchecked) requests."""
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint_url,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
        region_name="us-east-1",
    )
    iam.create_user(UserName="finops-ingest")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="finops-ingest", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="finops-ingest")["AccessKey"]
    return S3Server(
        endpoint_url=endpoint_url, access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"]
    )
