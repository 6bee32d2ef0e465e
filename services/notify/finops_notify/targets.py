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


async def resolve(host: str, port: int, allowlist: Collection[str]) -> list[str]:
    """The addresses of `host` that may be called: all of them when the allowlist names it; otherwise all of them
    provided every one is public (TargetRefused if not). Callers connect to these very addresses, so DNS cannot
    change between the check and the connection."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused(f"{host} does not resolve ({exc}); use a host with a public DNS name") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if allowed(host, port, allowlist):
        return addresses
    private = sorted(a for a in addresses if not _public(a))
    if private:
        raise TargetRefused(
            f"{host} resolves to the loopback, private or reserved address {', '.join(private)}; webhooks go to "
            "public addresses only. An operator can allow it with FINOPS_WEBHOOK_ALLOWLIST"
        )
    return addresses


def split(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or TargetRefused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(f"{url!r} is not an http(s) URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused(f"{url!r} has an invalid port: {exc}") from None
    return parts.scheme, parts.hostname, port


async def check(url: str, allowlist: Collection[str]) -> None:
    """Refuse `url` (TargetRefused) unless every address its host resolves to is public, or it is allowlisted."""
    _, host, port = split(url)
    if allowed(host, port, allowlist):
        return
    await resolve(host, port, allowlist)
