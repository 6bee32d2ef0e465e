"""Provider adapters, and which one buys an order: the sandbox (the default; it spends no money, so it buys), or
in `cloud` mode the adapter of the program's provider (aws_*, azure_*, gcp_*), in dry run unless live buying is
configured for that provider and the order's billing account."""

from __future__ import annotations

from dataclasses import dataclass, field

from finops_purchase.provider import Offering, Order, Provider, Refused

CLOUDS = ("aws", "azure", "gcp")


@dataclass(frozen=True)
class Choice:
    adapter: str
    dry_run: bool


@dataclass
class Registry:
    mode: str
    """'sandbox' or 'cloud'."""
    providers: dict[str, Provider]
    live: frozenset[str] = field(default_factory=frozenset)
    live_accounts: frozenset[str] = field(default_factory=frozenset)

    def choose(self, order: Order) -> Choice:
        """Which adapter buys `order`, and whether only as a dry run; Refused when none can."""
        if self.mode == "sandbox":
            return Choice("sandbox", dry_run=False)
        cloud = order.program.split("_", 1)[0]
        if cloud not in CLOUDS or cloud not in self.providers:
            raise Refused(f"no adapter buys program {order.program!r}: programs start with aws_, azure_ or gcp_")
        live = cloud in self.live and order.billing_account_id in self.live_accounts
        return Choice(cloud, dry_run=not live)

    def get(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            raise Refused(
                f"adapter {name!r} is not configured in this instance (FINOPS_PURCHASE_PROVIDER={self.mode})"
            ) from None

    async def offerings(self) -> list[Offering]:
        names = ["sandbox"] if self.mode == "sandbox" else [c for c in CLOUDS if c in self.providers]
        found: list[Offering] = []
        for name in names:
            found.extend(await self.providers[name].offerings())
        return found

    async def aclose(self) -> None:
        for provider in self.providers.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()
