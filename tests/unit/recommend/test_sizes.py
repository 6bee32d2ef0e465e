"""Instance types named in cost lines, and the same family a factor smaller (prices proportional to size)."""

from __future__ import annotations

import pytest

from finops_recommend.sizes import instance_type_of, smaller


@pytest.mark.parametrize(
    ("provider", "names", "expected"),
    [
        ("Amazon Web Services", ("BoxUsage:m5.xlarge",), "m5.xlarge"),
        ("AWS", ("SNA2C9ZKZQUUAPF8", "USW2-BoxUsage:c6gn.16xlarge"), "c6gn.16xlarge"),
        ("AWS", ("i-0abc", "u-6tb1.metal"), None),  # bare metal: no size to step down
        ("Microsoft", ("Standard_D4s_v5",), "Standard_D4s_v5"),
        ("Google Cloud", ("projects/p/zones/z/instances/n2-standard-8",), "n2-standard-8"),
        ("Google Cloud", ("n2-custom-6-23040",), None),
    ],
)
def test_the_instance_type_comes_from_the_sku_or_resource(provider, names, expected):
    assert instance_type_of(provider, *names) == expected


@pytest.mark.parametrize(
    ("instance_type", "factor", "expected"),
    [
        ("m5.4xlarge", 8, "m5.large"),  # 32 units / 8 = 4
        ("m5.xlarge", 2, "m5.large"),
        ("m5.large", 2, None),  # m5 has no medium
        ("m6g.large", 2, "m6g.medium"),  # Graviton families do
        ("t3.large", 8, "t3.micro"),  # 4 units / 8 = 0.5
        ("c5.9xlarge", 2, None),  # 72 / 2 = 36 units: no such size
        ("Standard_D8s_v5", 4, "Standard_D2s_v5"),
        ("Standard_D2s_v5", 2, None),
        ("Standard_E16-4ds_v5", 2, None),  # constrained vCPUs: priced as its parent
        ("n2-standard-16", 2, "n2-standard-8"),
        ("n2-standard-8", 8, None),
    ],
)
def test_a_smaller_size_of_the_same_family(instance_type, factor, expected):
    assert smaller(instance_type, factor) == expected
