"""The simulation's parameters: everything a company's bills and truth follow from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

PROVIDERS = ("aws", "azure", "gcp", "oci")
NATIVE_LAYOUT = {"aws": "aws-cur2", "azure": "azure-actual", "gcp": "gcp-billing", "oci": "oci-cost-report"}
LAYOUTS = {
    "aws": ("focus", "aws-cur2", "aws-cur-legacy"),
    "azure": ("focus", "azure-actual", "azure-amortized"),
    "gcp": ("focus", "gcp-billing"),
    "oci": ("focus", "oci-cost-report"),
}


@dataclass(frozen=True)
class SimConfig:
    """A simulated organisation.

    seed: every random choice follows from it (same seed and parameters -> byte-identical files and truth).
    accounts: sub accounts (AWS linked accounts, Azure subscriptions, GCP projects, OCI compartments) in all,
      dealt round-robin over `providers`; each provider gets one billing account per 4 of its sub accounts.
    months: billing periods from `start` (the first of a month).
    granularity: one row per resource per day, or per hour.
    restate: a second, restated file for one account-period (see Company.restatement).
    resources_per_account: resources per sub account (besides its network resource); `lines` overrides it
      with the count that makes about that many lines.
    layouts: provider -> layout ("focus" or the provider's native one, see LAYOUTS); native by default.
    day_first: write the native layouts that use dates in D/M/YYYY order (Azure) day first instead of ISO.
    gzip: write .csv.gz instead of .csv.
    commitments: the company holds a compute savings plan on one AWS billing account (see Company._existing).
    """

    seed: int = 7
    accounts: int = 24
    providers: tuple[str, ...] = ("aws", "azure", "gcp")
    months: int = 13
    start: str = "2025-11-01"
    granularity: str = "daily"
    restate: bool = True
    resources_per_account: int = 6
    lines: int | None = None
    layouts: dict[str, str] = field(default_factory=dict)
    day_first: bool = False
    gzip: bool = False
    currency: str = "USD"
    commitments: bool = True

    def __post_init__(self) -> None:
        unknown = [p for p in self.providers if p not in PROVIDERS]
        if unknown or not self.providers:
            raise ValueError(f"providers must be some of {', '.join(PROVIDERS)}; got {', '.join(self.providers)}")
        if len(set(self.providers)) != len(self.providers):
            raise ValueError("providers must be distinct")
        if self.accounts < len(self.providers):
            raise ValueError(f"accounts must be at least one per provider ({len(self.providers)})")
        if self.months < 1:
            raise ValueError("months must be at least 1")
        if self.granularity not in ("daily", "hourly"):
            raise ValueError("granularity must be daily or hourly")
        first = date.fromisoformat(self.start)
        if first.day != 1:
            raise ValueError("start must be the first day of a month")
        for provider, layout in self.layouts.items():
            if provider not in self.providers:
                raise ValueError(f"layout given for {provider}, which is not simulated")
            if layout not in LAYOUTS[provider]:
                raise ValueError(f"{provider} layouts are {', '.join(LAYOUTS[provider])}; got {layout}")
        if self.resources_per_account < 1:
            raise ValueError("resources_per_account must be at least 1")

    def layout_of(self, provider: str) -> str:
        return self.layouts.get(provider, NATIVE_LAYOUT[provider])

    @property
    def first_month(self) -> date:
        return date.fromisoformat(self.start)
