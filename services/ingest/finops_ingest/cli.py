"""The `finops` command line: upload a billing file to the ingest service, or export one as FOCUS 1.2.

    finops ingest PATH [--url URL] [--name N] [--format F] [--currency C] [--batch-size N] [--date-order dmy|mdy]
                       [--json]
    finops export focus INPUT -o OUTPUT [--format F] [--currency C] [--date-order dmy|mdy] [--json]
    finops simulate --out DIR [--seed N] [--accounts N] [--providers aws,azure,gcp,oci] [--months N]
                    [--granularity daily|hourly] [--lines N] [--layouts focus|native|aws=focus,...] [--day-first]
                    [--gzip] [--no-restate]

Exit codes: 0 done, 1 usage or unexpected failure, 2 the file was rejected, 3 the service is not reachable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import httpx

from finops_ingest.bills.dates import ORDERS

DEFAULT_URL = "http://127.0.0.1:8001"
CHUNK = 1 << 20
OK, FAILED, REJECTED, UNREACHABLE = 0, 1, 2, 3


class Progress:
    """Bytes sent of a total, with MB/s, on stderr: one `\\r` line on a terminal, else a line per quarter."""

    def __init__(self, total: int, stream: TextIO, *, label: str) -> None:
        self.total, self.stream, self.label = total, stream, label
        self.sent = 0
        self.started = time.monotonic()
        self.tty = stream.isatty()
        self._shown_at = 0.0
        self._quarter = 0

    def add(self, n: int) -> None:
        self.sent += n
        if self.tty:
            now = time.monotonic()
            if now - self._shown_at >= 0.1 or self.sent >= self.total:
                self._shown_at = now
                self.stream.write("\r" + self.line())
                self.stream.flush()
        else:
            quarter = 4 * self.sent // self.total if self.total else 4
            if quarter > self._quarter:
                self._quarter = quarter
                self.stream.write(self.line() + "\n")
                self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()

    def line(self) -> str:
        fraction = self.sent / self.total if self.total else 1.0
        width = 30
        bar = "#" * int(fraction * width)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        mb = 1 << 20
        return (
            f"{self.label} [{bar:<{width}}] {fraction:6.1%} "
            f"{self.sent / mb:,.1f}/{self.total / mb:,.1f} MB {self.sent / mb / elapsed:,.1f} MB/s"
        )


def chunks(path: Path, progress: Progress) -> Iterator[bytes]:
    """The file in CHUNK-sized pieces, so a file of any size streams without sitting in memory."""
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            progress.add(len(block))
            yield block
    progress.done()


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _totals(totals: list[dict]) -> list[str]:
    rows = [
        [t["billing_account_id"], t["currency"], t["billed_cost"], t["effective_cost"], str(t["line_count"])]
        for t in totals
    ]
    headers = ["BILLING ACCOUNT", "CURRENCY", "BILLED COST", "EFFECTIVE COST", "LINES"]
    return _table(headers, rows, right={2, 3, 4})


def _warnings(warnings: dict[str, int]) -> list[str]:
    if not warnings:
        return []
    return ["", "Warnings (tolerated, counted):", *(f"  {n:>8}  {w}" for w, n in warnings.items())]


def print_report(report: dict, out: TextIO) -> None:
    if report.get("duplicate"):
        print(f"{report['file_name']}: already ingested as {report['ingest_id']} (nothing new published)", file=out)
        return
    print(
        f"Ingested {report['file_name']} ({report['format']}): {report['row_count']} rows in "
        f"{report['batch_count']} batches, ingest id {report['ingest_id']}",
        file=out,
    )
    lines = ["", "Totals:", *_totals(report["totals"]), *_warnings(report.get("warnings") or {})]
    dates = report.get("date_order") or {}
    if dates.get("order"):
        lines += ["", f"Slash dates read as {dates['order']}: {dates['reason']}"]
    periods = report.get("periods") or []
    if periods:
        lines += ["", "Billing periods (version):"]
        lines += _table(
            ["BILLING ACCOUNT", "PERIOD START", "VERSION"],
            [[p["billing_account_id"], p["billing_period_start"], str(p["version"])] for p in periods],
            right={2},
        )
    print("\n".join(lines), file=out)


def print_rejection(rejected: dict, out: TextIO) -> None:
    print(f"Rejected: {rejected['file']}", file=out)
    print(f"  {rejected['message']}", file=out)
    errors = rejected.get("errors") or []
    print(f"{rejected.get('error_count', len(errors))} error(s), by kind (first row shown, count of rows):", file=out)
    for e in errors:
        where = ", ".join(
            part
            for part in (
                f"row {e['row']}" if e.get("row") is not None else "",
                f"column {e['column']}" if e.get("column") else "",
                f"value {e['value']!r}" if e.get("value") is not None else "",
            )
            if part
        )
        print(f"  - {where or 'file'}  (count {e.get('count', 1)})", file=out)
        print(f"      rule: {e['rule']}", file=out)
        print(f"      hint: {e['hint']}", file=out)


def ingest(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    path = Path(args.path)
    if not path.is_file():
        print(f"finops ingest: no such file: {path}", file=err)
        return FAILED
    url = args.url.rstrip("/")
    params = {"name": args.name or path.name}
    given = (("format", args.format), ("currency", args.currency), ("batch_size", args.batch_size),
             ("date_order", args.date_order))  # fmt: skip
    for key, value in given:
        if value is not None:
            params[key] = str(value)
    size = path.stat().st_size
    progress = Progress(size, err, label="uploading")
    timeout = httpx.Timeout(30.0, read=None)  # the service answers once it has read the whole file
    try:
        with httpx.Client(timeout=timeout) as client:
            response = client.post(
                f"{url}/v1/ingest",
                params=params,
                content=chunks(path, progress),
                headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
            )
    except httpx.ConnectError as exc:
        print(
            f"finops ingest: the ingest service at {url} is not reachable ({exc}).\n"
            "Start it with `make demo` (Kafka, PostgreSQL and every service), or point --url at a running one.",
            file=err,
        )
        return UNREACHABLE
    except httpx.TransportError as exc:
        print(f"finops ingest: the connection to {url} failed during the upload: {exc!r}", file=err)
        return UNREACHABLE
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code in (200, 201) and isinstance(body, dict):
        if args.json:
            print(json.dumps(body, indent=2), file=out)
        else:
            print_report(body, out)
        return OK
    if response.status_code == 422 and isinstance(body, dict) and "rejected" in body:
        if args.json:
            print(json.dumps(body, indent=2), file=out)
        else:
            print_rejection(body["rejected"], out)
        return REJECTED
    detail = body.get("error") if isinstance(body, dict) else response.text[:500]
    print(f"finops ingest: the service answered {response.status_code}: {detail}", file=err)
    return FAILED


def export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from finops_ingest.export import FOCUS_VERSION, export_focus
    from finops_ingest.rejection import FileRejected

    try:
        report = export_focus(
            Path(args.input), Path(args.output), format=args.format, currency=args.currency, date_order=args.date_order
        )
    except FileRejected as rejected:
        if args.json:
            print(json.dumps({"rejected": rejected.as_dict()}, indent=2), file=out)
        else:
            print_rejection(rejected.as_dict(), out)
        return REJECTED
    except ValueError as exc:
        print(f"finops export: {exc}", file=err)
        return FAILED
    if args.json:
        print(json.dumps(report.as_dict(), indent=2), file=out)
        return OK
    kind = f", decimals as {report.decimal_type}" if report.decimal_type else ""
    lines = [
        f"Wrote {report.rows} rows of FOCUS {FOCUS_VERSION} Cost and Usage to {report.output} "
        f"(from {report.format}{kind})",
        f"{len(report.columns)} columns: {', '.join(report.columns)}",
        "",
        "Totals:",
        *_totals(report.as_dict()["totals"]),  # type: ignore[arg-type]
        *_warnings(dict(sorted(report.warnings.items()))),
    ]
    print("\n".join(lines), file=out)
    return OK


def simulate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Write a simulated company's bills and truth (finops_simulate, a library: imported only when asked)."""
    from finops_simulate import LAYOUTS, Company, SimConfig

    providers = tuple(p.strip() for p in args.providers.split(",") if p.strip())
    layouts: dict[str, str] = {}
    for item in (args.layouts or "native").split(","):
        item = item.strip()
        if item in ("native", ""):
            continue
        if item == "focus":
            layouts.update(dict.fromkeys(providers, "focus"))
            continue
        provider, sep, layout = item.partition("=")
        if not sep or provider not in LAYOUTS:
            print(f"finops simulate: --layouts takes focus, native or provider=layout items, not {item!r}", file=err)
            return FAILED
        layouts[provider] = layout
    try:
        cfg = SimConfig(
            seed=args.seed, accounts=args.accounts, providers=providers, months=args.months, start=args.start,
            granularity=args.granularity, restate=not args.no_restate, lines=args.lines, layouts=layouts,
            day_first=args.day_first, gzip=args.gzip,
        )  # fmt: skip
    except ValueError as exc:
        print(f"finops simulate: {exc}", file=err)
        return FAILED
    company = Company(cfg)
    files = company.write(Path(args.out))
    truth = company.truth()
    rows = [[f.path.name, f.layout, str(f.lines), "yes" if f.restatement else ""] for f in files]
    lines = [
        f"Simulated {len(truth['organisation']['billing_accounts'])} billing accounts, {cfg.accounts} sub accounts, "
        f"{cfg.months} months ({cfg.granularity}) into {args.out}",
        "",
        *_table(["FILE", "LAYOUT", "LINES", "RESTATEMENT"], rows, right={2}),
        "",
        f"{sum(f.lines for f in files)} lines; EffectiveCost {truth['allocation']['effective_cost']} "
        f"{truth['currency']} (current versions), {truth['allocation']['allocated_share']} allocated to cost "
        "centers under rules.yaml",
        "truth.json, rules.yaml and manifest.json beside the bills.",
    ]
    print("\n".join(lines), file=out)
    return OK


_DATE_ORDER_HELP = (
    "how to read slash dates (03/04/2026) when every one in the file is ambiguous: dmy (day first) or mdy "
    "(month first); a file with a day or month above 12 decides for itself"
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="finops", description="FinOps platform command line.")
    commands = top.add_subparsers(dest="command", required=True)

    up = commands.add_parser("ingest", help="upload a billing file to the ingest service")
    up.add_argument("path", help="the billing file (CSV, gzip'd CSV, Parquet or JSON lines)")
    up.add_argument("--url", default=DEFAULT_URL, help=f"the ingest service (default {DEFAULT_URL})")
    up.add_argument("--name", help="the file's name in the platform (default: its file name)")
    up.add_argument("--format", help="the billing format, when detection should not decide")
    up.add_argument("--currency", help="the billing currency of an export that has no currency column")
    up.add_argument("--batch-size", type=int, help="cost lines per published batch")
    up.add_argument("--date-order", choices=ORDERS, help=_DATE_ORDER_HELP)
    up.add_argument("--json", action="store_true", help="print the service's JSON report as it is")
    up.set_defaults(run=ingest)

    ex = commands.add_parser("export", help="convert a billing file to an open format")
    kinds = ex.add_subparsers(dest="kind", required=True)
    focus = kinds.add_parser("focus", help="FOCUS 1.2 Cost and Usage as CSV, .csv.gz or Parquet")
    focus.add_argument("input", help="the billing file (any supported format)")
    focus.add_argument("-o", "--output", required=True, help="the file to write: .csv, .csv.gz or .parquet")
    focus.add_argument("--format", help="the billing format, when detection should not decide")
    focus.add_argument("--currency", help="the billing currency of an export that has no currency column")
    focus.add_argument("--date-order", choices=ORDERS, help=_DATE_ORDER_HELP)
    focus.add_argument("--json", action="store_true", help="print the export report as JSON")
    focus.set_defaults(run=export)

    sim = commands.add_parser("simulate", help="write a simulated company's bills and their truth")
    sim.add_argument("--out", required=True, help="the directory to write into")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--accounts", type=int, default=24, help="sub accounts over all providers")
    sim.add_argument("--providers", default="aws,azure,gcp", help="comma-separated: aws, azure, gcp, oci")
    sim.add_argument("--months", type=int, default=13)
    sim.add_argument("--start", default="2025-11-01", help="the first month (YYYY-MM-01)")
    sim.add_argument("--granularity", choices=("daily", "hourly"), default="daily")
    sim.add_argument("--lines", type=int, help="about how many lines to write (sets resources per account)")
    sim.add_argument("--layouts", help="focus, native (default), or provider=layout items (aws=focus,...)")
    sim.add_argument("--day-first", action="store_true", help="day-first dates where the layout has them (Azure)")
    sim.add_argument("--gzip", action="store_true", help="write .csv.gz")
    sim.add_argument("--no-restate", action="store_true", help="no restatement file")
    sim.set_defaults(run=simulate)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
