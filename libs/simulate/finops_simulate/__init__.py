"""A simulated multi-cloud company with known truth.

    from finops_simulate import SimConfig, Company
    company = Company(SimConfig(seed=7))
    files = company.write(out_dir)      # bills, truth.json, rules.yaml, manifest.json
    truth = company.truth()             # the same dict as truth.json

The simulator never imports the platform: its truth follows from its own parameters.
"""

from finops_simulate.company import BillFile, Company
from finops_simulate.config import LAYOUTS, PROVIDERS, SimConfig

__all__ = ["LAYOUTS", "PROVIDERS", "BillFile", "Company", "SimConfig"]
