"""`finops simulate`: the CLI writes the company the library does and prints a summary."""

from __future__ import annotations

import io
import json

from finops_ingest.cli import main, parser, simulate
from finops_simulate import Company, SimConfig


def test_simulate_writes_bills_and_truth_and_prints_totals(tmp_path, capsys):
    out = tmp_path / "sim"
    code = main(["simulate", "--out", str(out), "--seed", "3", "--accounts", "8", "--providers", "aws,gcp,oci",
                 "--months", "2", "--layouts", "aws=focus"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    truth = json.loads((out / "truth.json").read_text())
    assert truth == Company(SimConfig(seed=3, accounts=8, providers=("aws", "gcp", "oci"), months=2,
                                      layouts={"aws": "focus"})).truth()  # fmt: skip
    for f in truth["files"]:
        assert (out / f["path"]).is_file()
        assert f["path"].split("/")[-1] in printed
    assert truth["allocation"]["effective_cost"] in printed
    assert {"rules.yaml", "manifest.json", "utilization.csv", "metrics.csv"} <= {p.name for p in out.iterdir()}
    assert [f["layout"] for f in truth["files"]][:3] == ["focus", "gcp-billing", "oci-cost-report"]


def test_simulate_refuses_bad_options_naming_them(tmp_path):
    err = io.StringIO()
    args = parser().parse_args(["simulate", "--out", str(tmp_path), "--providers", "aws,ibm"])
    assert simulate(args, io.StringIO(), err) == 1
    assert "providers" in err.getvalue()
    err = io.StringIO()
    args = parser().parse_args(["simulate", "--out", str(tmp_path), "--layouts", "aws:focus"])
    assert simulate(args, io.StringIO(), err) == 1
    assert "--layouts" in err.getvalue()
    assert not any(tmp_path.iterdir())
