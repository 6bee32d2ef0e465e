from __future__ import annotations

import pytest

from finops_simulate import Company, SimConfig

DEFAULT = SimConfig(seed=7, accounts=24, providers=("aws", "azure", "gcp"), months=13)
SMALL_ALL = SimConfig(seed=11, accounts=8, providers=("aws", "azure", "gcp", "oci"), months=3)


@pytest.fixture(scope="session")
def default_company(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim-default")
    company = Company(DEFAULT)
    files = company.write(out)
    return company, files, out
