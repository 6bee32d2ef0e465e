"""Benchmark of the simulator: lines per second written by `finops simulate` (FOCUS and native layouts) and the
process's peak memory at two sizes (bounded memory: the larger run must not need more), against two yardsticks
timed in the same run over the very rows it wrote: Python's csv module copying them (csv.reader -> csv.writer),
and DuckDB reading and writing them (COPY (SELECT * FROM read_csv(...)) TO ...). Prints a table and writes
bench/results/simulate.json.

    .venv/bin/python bench/simulate.py                    # 200,000 and 800,000 lines
    .venv/bin/python bench/simulate.py --lines 50000
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import print_table, write_results

CHILD = """
import json, sys, time
from pathlib import Path
from finops_simulate import Company, SimConfig
lines, layouts, out = int(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3])
started = time.perf_counter()
files = Company(SimConfig(lines=lines, layouts=layouts, restate=False)).write(out)
elapsed = time.perf_counter() - started
# VmHWM, not ru_maxrss: the latter keeps the forking parent's high-water mark across exec
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"lines": sum(f.lines for f in files), "seconds": elapsed, "peak_rss_mb": hwm / 1024}))
"""


def simulate(lines: int, layouts: dict[str, str], out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(lines), json.dumps(layouts), str(out)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def csv_copy(files: list[Path], scratch: Path) -> tuple[int, float]:
    n = 0
    started = time.perf_counter()
    for path in files:
        with path.open(newline="") as src, (scratch / path.name).open("w", newline="") as dst:
            writer = csv.writer(dst, lineterminator="\n")
            for row in csv.reader(src):
                writer.writerow(row)
                n += 1
    return n - len(files), time.perf_counter() - started


def duckdb_copy(files: list[Path], scratch: Path) -> tuple[int, float]:
    con = duckdb.connect()
    n = 0
    started = time.perf_counter()
    for path in files:
        target = scratch / f"{path.stem}.duck.csv"
        con.execute(f"COPY (SELECT * FROM read_csv('{path}', all_varchar=true)) TO '{target}' (HEADER)")
        n += con.execute(f"SELECT count(*) FROM read_csv('{target}', all_varchar=true)").fetchone()[0]
    return n, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200_000, help="the small run (the large one is 4x)")
    args = parser.parse_args()
    rows, results = [], []
    for name, layouts in (("focus", {"aws": "focus", "azure": "focus", "gcp": "focus"}), ("native", {})):
        for lines in (args.lines, 4 * args.lines):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "sim"
                got = simulate(lines, layouts, out)
                files = sorted((out / "bills").glob("*.csv"))
                scratch = Path(tmp) / "copy"
                scratch.mkdir()
                csv_n, csv_s = csv_copy(files, scratch)
                duck_n, duck_s = duckdb_copy(files, scratch)
            assert csv_n == got["lines"] == duck_n, (csv_n, got["lines"], duck_n)
            rate = got["lines"] / got["seconds"]
            entry = {
                "layouts": name, "lines": got["lines"], "seconds": round(got["seconds"], 2),
                "lines_per_s": round(rate), "peak_rss_mb": round(got["peak_rss_mb"], 1),
                "csv_copy_lines_per_s": round(csv_n / csv_s), "duckdb_copy_lines_per_s": round(duck_n / duck_s),
                "ratio_to_csv_copy": round(rate / (csv_n / csv_s), 3),
            }  # fmt: skip
            results.append(entry)
            keys = ("lines", "lines_per_s", "csv_copy_lines_per_s", "duckdb_copy_lines_per_s", "ratio_to_csv_copy")
            rows.append([name, *(entry[k] for k in keys), entry["peak_rss_mb"]])
    print_table(
        "finops simulate: lines per second and peak memory (daily, 24 accounts, 13 months, aws/azure/gcp)",
        ["layouts", "lines", "lines/s", "csv copy lines/s", "duckdb copy lines/s", "ratio to csv copy", "peak MB"],
        rows,
    )
    for name in ("focus", "native"):
        small, large = [r for r in results if r["layouts"] == name]
        print(f"{name}: peak memory {small['peak_rss_mb']} MB at {small['lines']:,} lines, "
              f"{large['peak_rss_mb']} MB at {large['lines']:,}")  # fmt: skip
    write_results(ROOT / "bench" / "results" / "simulate.json", "simulate", runs=results)


if __name__ == "__main__":
    main()
