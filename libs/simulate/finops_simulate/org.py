"""The organisation: billing accounts, sub accounts, cost centers, teams, products, environments, and the
resources that run in them, with their tags as written (imperfect, as real tags are) and their true owner.

Tag imperfections, by the resource's global index g (so the truth knows each one):

    g % 10 == 0  "missing"      no tags at all
    g % 10 == 1  "cost-centre"  cost center under the misspelled key `cost-centre` (not an alias in rules.yaml)
    g % 10 == 2  "CostCenter"   cost center under `CostCenter` (GCP: `costcenter`; an alias of cost_center)
    g % 10 == 3  "upper-value"  cost center value in upper case, `CC-1003` (rules.yaml lower-cases values;
                                GCP labels cannot hold upper case, so there the key is `cc`, another alias)
    otherwise    "clean"        team, cost_center, product, environment tags, all lower case

OCI writes them as defined tags of the namespace `Finance` (`tags/Finance.team`); rules.yaml aliases the
namespaced keys, so they resolve (or not) exactly as the other providers' keys do.

Sub account 0 of each provider is *shared*: several cost centers run in it and only tags say whose a resource
is, so there "missing" and "cost-centre" resources are unallocated. Every other sub account belongs to one cost
center and rules.yaml maps it by its id, whatever its resources' tags say. Each sub account also has one network
resource (ServiceCategory Networking), whose cost is the shared pool.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from finops_simulate.config import SimConfig

UNALLOCATED = "unallocated"
CENTRAL = "cc-9000"


@dataclass(frozen=True)
class CostCenter:
    id: str
    team: str
    product: str


COST_CENTERS = (
    CostCenter("cc-1001", "payments", "checkout"),
    CostCenter("cc-1002", "search", "catalog"),
    CostCenter("cc-1003", "data", "analytics"),
    CostCenter("cc-1004", "ml", "recommendations"),
    CostCenter("cc-1005", "platform", "core"),
    CostCenter("cc-1006", "mobile", "app"),
)
CENTRAL_CC = CostCenter(CENTRAL, "finops", "shared")
ENVIRONMENTS = ("prod", "staging", "dev")


@dataclass(frozen=True)
class Service:
    """One billable service of a provider with everything its layouts need."""

    key: str  # compute, database, storage, network
    code: str  # AWS product code, Azure ConsumedService, GCP service id, OCI product/service
    name: str  # FOCUS ServiceName as the native layout's reader derives it
    category: str  # FOCUS ServiceCategory
    meter: str  # Azure MeterCategory / GCP service description / AWS product name
    sku: str
    usage_type: str
    unit: str
    price: Decimal  # per unit (per hour of one instance, GB-month, GB)
    per_hour: Decimal  # units per resource-hour at factor 1 (instances: 1, storage: GB/730, network GB/h)


def _s(key, code, name, category, meter, sku, usage_type, unit, price, per_hour) -> Service:
    return Service(key, code, name, category, meter, sku, usage_type, unit, Decimal(price), Decimal(per_hour))


CATALOG: dict[str, dict[str, Service]] = {
    "aws": {
        "compute": _s(
            "compute",
            "AmazonEC2",
            "Amazon Elastic Compute Cloud",
            "Compute",
            "Amazon Elastic Compute Cloud",
            "DQ578CGN99KG6ECF",
            "USE1-BoxUsage:m5.xlarge",
            "Hrs",
            "0.192",
            "1",
        ),
        "database": _s(
            "database",
            "AmazonRDS",
            "Amazon Relational Database Service",
            "Databases",
            "Amazon Relational Database Service",
            "QZ5BKBNQH8XE4JRW",
            "USE1-InstanceUsage:db.r5.large",
            "Hrs",
            "0.25",
            "1",
        ),
        "storage": _s(
            "storage",
            "AmazonS3",
            "Amazon Simple Storage Service",
            "Storage",
            "Amazon Simple Storage Service",
            "WP9ANXZGBYYSGJEA",
            "USE1-TimedStorage-ByteHrs",
            "GB-Mo",
            "0.023",
            "0.6849315",
        ),
        "network": _s(
            "network",
            "AWSDataTransfer",
            "AWS Data Transfer",
            "Networking",
            "AWS Data Transfer",
            "AQWDVY9D5XRTC4ZD",
            "USE1-DataTransfer-Out-Bytes",
            "GB",
            "0.09",
            "2.5",
        ),
    },
    "azure": {
        "compute": _s(
            "compute",
            "Microsoft.Compute",
            "Virtual Machines",
            "Compute",
            "Virtual Machines",
            "DZH318Z0BQ4L",
            "D4s v5",
            "1 Hour",
            "0.192",
            "1",
        ),
        "database": _s(
            "database",
            "Microsoft.Sql",
            "SQL Database",
            "Databases",
            "SQL Database",
            "DZH318Z0BQ6F",
            "vCore",
            "1 Hour",
            "0.2516",
            "1",
        ),
        "storage": _s(
            "storage",
            "Microsoft.Storage",
            "Storage",
            "Storage",
            "Storage",
            "DZH318Z0BNVX",
            "Hot LRS Data Stored",
            "1 GB/Month",
            "0.0208",
            "0.6849315",
        ),
        "network": _s(
            "network",
            "Microsoft.Network",
            "Bandwidth",
            "Networking",
            "Bandwidth",
            "DZH318Z0BNVW",
            "Standard Data Transfer Out",
            "1 GB",
            "0.087",
            "2.5",
        ),
    },
    "gcp": {
        "compute": _s(
            "compute",
            "6F81-5844-456A",
            "Compute Engine",
            "Compute",
            "Compute Engine",
            "2E27-4F75-95CD",
            "N2 Instance Core running in Americas",
            "hour",
            "0.1942",
            "1",
        ),
        "database": _s(
            "database",
            "9662-B51E-5089",
            "Cloud SQL",
            "Databases",
            "Cloud SQL",
            "A9A0-3FC8-2F34",
            "Cloud SQL for PostgreSQL: Regional - vCPU",
            "hour",
            "0.2464",
            "1",
        ),
        "storage": _s(
            "storage",
            "95FF-2EF5-5EA1",
            "Cloud Storage",
            "Storage",
            "Cloud Storage",
            "E5F0-6A5D-7BAD",
            "Standard Storage US Multi-region",
            "gibibyte month",
            "0.026",
            "0.6849315",
        ),
        "network": _s(
            "network",
            "E505-1604-58F8",
            "Networking",
            "Networking",
            "Networking",
            "9DE9-9092-B3BC",
            "Network Internet Egress from Americas to Americas",
            "gibibyte",
            "0.085",
            "2.5",
        ),
    },
    "oci": {
        "compute": _s(
            "compute",
            "COMPUTE",
            "COMPUTE",
            "Compute",
            "COMPUTE",
            "B93113",
            "Compute - Standard - E4 - OCPU",
            "OCPU Per Hour",
            "0.025",
            "8",
        ),
        "database": _s(
            "database",
            "DATABASE",
            "DATABASE",
            "Databases",
            "DATABASE",
            "B90570",
            "Autonomous Transaction Processing - OCPU",
            "OCPU Per Hour",
            "0.3226",
            "1",
        ),
        "storage": _s(
            "storage",
            "OBJECTSTORE",
            "OBJECTSTORE",
            "Storage",
            "OBJECTSTORE",
            "B91628",
            "Object Storage - Storage",
            "Gigabyte Storage Capacity Per Month",
            "0.0255",
            "0.6849315",
        ),
        "network": _s(
            "network",
            "NETWORK",
            "NETWORK",
            "Networking",
            "NETWORK",
            "B88327",
            "Outbound Data Transfer Zone 1",
            "GB Outbound Data Transfer",
            "0.0085",
            "2.5",
        ),
    },
}
REGION = {"aws": "us-east-1", "azure": "eastus", "gcp": "us-central1", "oci": "us-ashburn-1"}
PATTERNS = ("steady", "seasonal", "growing", "steady", "seasonal", "migrating")
KINDS = ("compute", "compute", "database", "storage", "compute", "database")
FLAWS = ("missing", "cost-centre", "CostCenter", "upper-value") + ("clean",) * 6


@dataclass
class BillingAccount:
    provider: str
    id: str
    name: str
    sub_accounts: list[SubAccount] = field(default_factory=list)


@dataclass
class SubAccount:
    provider: str
    billing_account: BillingAccount
    id: str
    name: str
    owner: CostCenter | None  # None: shared, tags decide
    environment: str
    resources: list[Resource] = field(default_factory=list)
    central: bool = False  # a payer's own account (commitment fees land there)


@dataclass
class Resource:
    index: int  # global
    id: str
    name: str
    sub_account: SubAccount
    service: Service
    pattern: str
    units: Decimal  # how big: instances, or GB stored, or GB/h transferred at factor 1
    cost_center: CostCenter  # the true owner
    flaw: str
    tags: dict[str, str]
    stops_after: int | None = None  # migrating: last period index with cost
    planted: str | None = None  # "idle", "overprovisioned", "anomaly"
    anomaly_day: object = None  # the local date of the planted anomaly

    @property
    def product(self) -> str:
        """The product rules.yaml gives its cost (its sub account's owner, else its product tag)."""
        if self.sub_account.owner is not None:
            return self.sub_account.owner.product
        return UNALLOCATED if self.flaw == "missing" else self.cost_center.product

    @property
    def provider(self) -> str:
        return self.sub_account.provider

    @property
    def allocated_to(self) -> str:
        """The cost center rules.yaml gives its cost (pool resources are split, see Company)."""
        if self.sub_account.owner is not None:
            return self.sub_account.owner.id
        if self.flaw in ("missing", "cost-centre"):
            return UNALLOCATED
        return self.cost_center.id


ANOMALY_FACTOR = Decimal(6)
IDLE_PER = ("aws", "azure", "gcp", "oci")


@dataclass
class Organisation:
    billing_accounts: list[BillingAccount]

    @property
    def sub_accounts(self) -> list[SubAccount]:
        return [s for b in self.billing_accounts for s in b.sub_accounts]

    @property
    def resources(self) -> list[Resource]:
        return [r for s in self.sub_accounts for r in s.resources]

    def billing_account(self, account_id: str) -> BillingAccount:
        return next(b for b in self.billing_accounts if b.id == account_id)


def _tags(provider: str, flaw: str, cc: CostCenter, env: str) -> dict[str, str]:
    if flaw == "missing":
        return {}
    tags = {"team": cc.team, "cost_center": cc.id, "product": cc.product, "environment": env}
    if flaw == "cost-centre":
        tags["cost-centre"] = tags.pop("cost_center")
    elif flaw == "CostCenter":
        tags["costcenter" if provider == "gcp" else "CostCenter"] = tags.pop("cost_center")
    elif flaw == "upper-value":
        if provider == "gcp":
            tags["cc"] = tags.pop("cost_center")
        else:
            tags["cost_center"] = cc.id.upper()
    return tags


def _sub_id(provider: str, rng: random.Random) -> str:
    """A sub account id in the provider's own shape."""
    if provider == "aws":
        return str(rng.randrange(10**11, 10**12))
    if provider == "azure":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if provider == "gcp":
        return f"proj-{rng.randrange(16**6):06x}"
    return f"ocid1.compartment.oc1..aaaa{rng.getrandbits(96):024x}"


def _billing_id(provider: str, rng: random.Random) -> str:
    if provider == "aws":
        return str(rng.randrange(10**11, 10**12))
    if provider == "azure":
        return str(rng.randrange(10**7, 10**8))  # EA enrollment number
    if provider == "gcp":
        h = f"{rng.getrandbits(72):018X}"
        return f"{h[0:6]}-{h[6:12]}-{h[12:18]}"
    return f"ocid1.tenancy.oc1..aaaa{rng.getrandbits(96):024x}"


def build(cfg: SimConfig, resources_per_account: int) -> Organisation:
    rng = random.Random(f"{cfg.seed}/organisation")
    per_provider = {p: 0 for p in cfg.providers}
    for i in range(cfg.accounts):
        per_provider[cfg.providers[i % len(cfg.providers)]] += 1
    accounts: list[BillingAccount] = []
    g = 0
    owned = 0
    for provider in cfg.providers:
        subs = per_provider[provider]
        n_billing = max(1, subs // 4)
        billing = [
            BillingAccount(provider, _billing_id(provider, rng), f"{provider}-billing-{b + 1}")
            for b in range(n_billing)
        ]
        accounts.extend(billing)
        for s in range(subs):
            ba = billing[s % n_billing]
            sub_id = _sub_id(provider, rng)
            if s == 0:
                owner, env, name = None, "prod", f"{provider}-shared-platform"
            elif s < n_billing:
                owner, env, name = CENTRAL_CC, "prod", f"{provider}-management-{s + 1}"
            else:
                owner = COST_CENTERS[owned % len(COST_CENTERS)]
                env = ENVIRONMENTS[(owned // len(COST_CENTERS)) % len(ENVIRONMENTS)]
                name = f"{owner.product}-{env}"
                owned += 1
            sub = SubAccount(provider, ba, sub_id, name, owner, env, central=owner is CENTRAL_CC)
            ba.sub_accounts.append(sub)
            catalog = CATALOG[provider]
            for j in range(resources_per_account + 1):
                network = j == resources_per_account
                kind = "network" if network else KINDS[j % len(KINDS)]
                service = catalog[kind]
                pattern = "seasonal" if network else PATTERNS[(j + s) % len(PATTERNS)]
                cc = owner if owner is not None else COST_CENTERS[(g + j) % len(COST_CENTERS)]
                flaw = FLAWS[g % len(FLAWS)]
                units = (
                    Decimal(rng.randrange(2, 9))
                    if kind in ("compute", "database")
                    else Decimal(rng.randrange(200, 5000) if kind == "storage" else rng.randrange(20, 200)) / 10
                )
                stops = max(1, cfg.months // 2) - 1 if pattern == "migrating" and cfg.months > 1 else None
                if pattern == "migrating" and stops is None:
                    pattern = "steady"
                res_id = _resource_id(provider, ba, sub, kind, g)
                sub.resources.append(
                    Resource(
                        g,
                        res_id,
                        f"{name}-{kind}-{j}",
                        sub,
                        service,
                        pattern,
                        units,
                        cc,
                        flaw,
                        _tags(provider, flaw, cc, env),
                        stops,
                    )
                )
                g += 1
    org = Organisation(accounts)
    _plant(cfg, org, g)
    return org


def _plant(cfg: SimConfig, org: Organisation, g: int) -> None:
    """The planted findings (see findings.py): two idle instances, two over-provisioned ones, one anomaly."""
    from datetime import date as _date

    from finops_simulate.periods import add_months

    owned = [s for s in org.sub_accounts if s.owner is not None and not s.central]
    by_provider = sorted(owned, key=lambda s: (IDLE_PER.index(s.provider), org.sub_accounts.index(s)))
    hosts = [s for i, s in enumerate(by_provider) if s.provider not in {t.provider for t in by_provider[:i]}]
    hosts = (hosts + owned)[:2] if owned else []
    for n, sub in enumerate(hosts):
        service = CATALOG[sub.provider]["compute"]
        units = Decimal(1)
        res_id = _resource_id(sub.provider, sub.billing_account, sub, "compute", g) + "-idle"
        sub.resources.append(
            Resource(
                g,
                res_id,
                f"{sub.name}-forgotten-{n}",
                sub,
                service,
                "idle",
                units,
                sub.owner,
                "clean",
                _tags(sub.provider, "clean", sub.owner, sub.environment),
                None,
                "idle",
            )
        )
        g += 1
    steady = [
        r
        for s in owned
        for r in s.resources
        if r.service.key == "compute" and r.pattern == "steady" and r.planted is None
    ]
    for r in steady[:2]:
        r.planted = "overprovisioned"
    candidates = [r for r in steady[2:] if r.provider != "aws"] or steady[2:]
    if candidates:
        victim = candidates[0]
        victim.planted = "anomaly"
        month = add_months(cfg.first_month, max(0, cfg.months - 2))
        victim.anomaly_day = _date(month.year, month.month, 15)


def _resource_id(provider: str, ba: BillingAccount, sub: SubAccount, kind: str, g: int) -> str:
    if provider == "aws":
        return {
            "compute": f"i-{g:017x}",
            "database": f"arn:aws:rds:us-east-1:{sub.id}:db:db-{g:06d}",
            "storage": f"bucket-{sub.id}-{g:06d}",
            "network": f"i-{g:017x}-nat",
        }[kind]
    if provider == "azure":
        rp = {
            "compute": "Microsoft.Compute/virtualMachines",
            "database": "Microsoft.Sql/servers",
            "storage": "Microsoft.Storage/storageAccounts",
            "network": "Microsoft.Network/publicIPAddresses",
        }[kind]
        return f"/subscriptions/{sub.id}/resourceGroups/rg-{sub.name}/providers/{rp}/{kind}{g:06d}"
    if provider == "gcp":
        return f"//compute.googleapis.com/projects/{sub.id}/zones/us-central1-a/instances/{kind}-{g:06d}"
    return f"ocid1.{'instance' if kind == 'compute' else kind}.oc1.iad.aaaa{g:024x}"
