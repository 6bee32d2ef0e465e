"""Instance sizes: the instance type a cost line names, and the same family `factor` times smaller.

Within a family, on-demand prices are proportional to size: AWS states it with its normalization factors (the
units instance size flexibility uses: nano 0.25, micro 0.5, small 1, medium 2, large 4, xlarge 8, 2xlarge 16...),
Azure and GCP price a series per vCPU (Standard_D4s_v5 costs twice Standard_D2s_v5, n2-standard-8 twice
n2-standard-4). So a type `factor` times smaller costs 1/factor as much, and a rightsizing finding saves
(1 - 1/factor) of the run rate.

Which sizes a family offers is not in the bill. Approximations, on the safe side: an AWS burstable family (t2,
t3, t4g...) goes down to nano, a Graviton family (m6g, c7gn...) and a1 to medium, any other to large; Azure and GCP
types go down to 2 vCPUs, through powers of two.
"""

from __future__ import annotations

import re

AWS_UNITS = {
    "nano": 0.25, "micro": 0.5, "small": 1, "medium": 2, "large": 4, "xlarge": 8, "2xlarge": 16, "3xlarge": 24,
    "4xlarge": 32, "6xlarge": 48, "8xlarge": 64, "9xlarge": 72, "10xlarge": 80, "12xlarge": 96, "16xlarge": 128,
    "18xlarge": 144, "24xlarge": 192, "32xlarge": 256, "48xlarge": 384,
}  # fmt: skip
"""AWS normalization factors per size (EC2 User Guide, "Instance size flexibility")."""

_AWS = re.compile(r"(?<![a-z0-9])([a-z][a-z0-9-]*\d[a-z0-9-]*)\.(nano|micro|small|medium|large|\d*xlarge)(?![a-z0-9])")
_AZURE = re.compile(r"(?<![a-z0-9])(standard_[a-z]+)(\d+)((?:-\d+)?[a-z]*(?:_v\d+)?)(?![a-z0-9])", re.IGNORECASE)
_GCP = re.compile(
    r"(?<![a-z0-9])((?:n1|n2|n2d|n4|e2|c2|c2d|c3|c3d|c4|c4a|m1|m2|m3|t2d|t2a)-(?:standard|highmem|highcpu))-(\d+)"
    r"(?![a-z0-9])"
)
_VCPUS = (2, 4, 8, 16, 32, 64)


def instance_type_of(provider_name: str, *names: str | None) -> str | None:
    """The instance type named in any of `names` (SKU id, usage type, resource id), for the provider."""
    provider = provider_name.lower()
    for name in names:
        if not name:
            continue
        if "amazon" in provider or "aws" in provider:
            if m := _AWS.search(name.lower()):
                return m.group(0)
        elif "microsoft" in provider or "azure" in provider:
            if m := _AZURE.search(name):
                return m.group(0)
        elif ("google" in provider or "gcp" in provider) and (m := _GCP.search(name.lower())):
            return m.group(0)
    return None


def _aws_floor(family: str) -> float:
    if family.startswith("t"):
        return AWS_UNITS["nano"]
    if family == "a1" or re.fullmatch(r"[a-z]+\d+g[a-z]*", family):
        return AWS_UNITS["medium"]
    return AWS_UNITS["large"]


def smaller(instance_type: str, factor: int) -> str | None:
    """The type of the same family `factor` times smaller, None when the family offers none (as far as known)."""
    if m := _AWS.fullmatch(instance_type):
        family, size = m.group(1), m.group(2)
        target = AWS_UNITS[size] / factor
        if target < _aws_floor(family):
            return None
        names = [n for n, u in AWS_UNITS.items() if u == target]
        return f"{family}.{names[0]}" if names else None
    if m := _AZURE.fullmatch(instance_type):
        vcpus = int(m.group(2))
        if m.group(3).startswith("-"):
            return None  # a constrained-vCPU size: its price follows its parent's, not its vCPUs
        if vcpus % factor or vcpus // factor not in _VCPUS:
            return None
        return f"{m.group(1)}{vcpus // factor}{m.group(3)}"
    if m := _GCP.fullmatch(instance_type):
        vcpus = int(m.group(2))
        if vcpus % factor or vcpus // factor not in _VCPUS:
            return None
        return f"{m.group(1)}-{vcpus // factor}"
    return None
