"""Webhook targets in loopback, private, link-local or reserved ranges are refused with a clear error unless the
allowlist names them; non-http schemes are refused."""

from __future__ import annotations

import pytest

from finops_notify import targets


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://localhost/hook",
        "http://0.0.0.0/hook",
    ],
)
async def test_private_targets_are_refused(url):
    with pytest.raises(targets.TargetRefused, match="loopback, private or reserved"):
        await targets.check(url, frozenset())


async def test_an_allowlisted_host_or_host_and_port_passes():
    await targets.check("http://127.0.0.1:8080/hook", frozenset({"127.0.0.1"}))
    await targets.check("http://10.1.2.3:9000/hook", frozenset({"10.1.2.3:9000"}))
    with pytest.raises(targets.TargetRefused):
        await targets.check("http://10.1.2.3:9001/hook", frozenset({"10.1.2.3:9000"}))


async def test_a_public_address_passes_and_other_schemes_do_not():
    await targets.check("https://93.184.215.14/hook", frozenset())
    with pytest.raises(targets.TargetRefused, match="http"):
        await targets.check("file:///etc/passwd", frozenset())
