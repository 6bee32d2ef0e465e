"""Where outbound HTTP may go: never to loopback, private, link-local or otherwise reserved addresses unless an
allowlist names the host (FINOPS_WEBHOOK_ALLOWLIST, comma separated hosts or host:port)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection
from urllib.parse import urlsplit


class TargetRefused(Exception):
    """The URL may not be called: its scheme is not http(s) or it resolves to a non-public address."""


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


def allowed(host: str, port: int, allowlist: Collection[str]) -> bool:
    return host.lower() in allowlist or f"{host.lower()}:{port}" in allowlist


async def check(url: str, allowlist: Collection[str]) -> None:
    """Refuse `url` (TargetRefused) unless every address its host resolves to is public, or it is allowlisted."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(f"{url!r} is not an http(s) URL with a host")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if allowed(host, port, allowlist):
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused(f"{host} does not resolve ({exc}); use a host with a public DNS name") from None
    private = sorted({info[4][0] for info in infos if not _public(info[4][0])})
    if private:
        raise TargetRefused(
            f"{host} resolves to the loopback, private or reserved address {', '.join(private)}; webhooks go to "
            "public addresses only. An operator can allow it with FINOPS_WEBHOOK_ALLOWLIST"
        )
