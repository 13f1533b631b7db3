"""Saghat's benchmarks (issue 8): one command builds a fund and runs every scenario against its baseline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saghat_perf uv run python -m tests.perf.run [--quick] [--keep]

It never touches the database named in DATABASE_URL: like the test suite it works in a dedicated
database beside it (PostgreSQL: ``test_<name>``; SQLite: the file ``perf-db.sqlite3``), created
fresh, migrated, filled with ``fund.demo.generate_fund`` and dropped at the end (``--keep`` keeps it
and reuses the fund next time: building 1,200,000 payments takes minutes). The table is printed and
written to ``perf-results.md`` (or ``--output``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
SCENARIOS = ("draw", "import", "page", "admin", "sweep")


def _environment() -> None:
    """Production-like settings (DEBUG off), allowed before Django reads them; .env never overrides these."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DEBUG"] = "false"
    # The development key and plain static files are fine on loopback (SAGHAT_TESTING), as in the tests.
    os.environ["SAGHAT_TESTING"] = "1"
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
    os.environ["SAGHAT_TEST_DB"] = "perf-db.sqlite3"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # whitenoise warns once per process that there is no collectstatic folder (gunicorn's workers too).
    os.environ["PYTHONWARNINGS"] = "ignore:No directory at"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the harness in about a minute")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database and reuse its fund")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--output", type=Path, default=BASE_DIR / "perf-results.md", help="where to write the table")
    return parser.parse_args()


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def machine() -> list[str]:
    from django.db import connection

    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split("\n")[0].split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB memory"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            database = f"PostgreSQL {cursor.fetchone()[0]} on 127.0.0.1"
    else:
        import sqlite3

        database = f"SQLite {sqlite3.sqlite_version}"
    import django

    return [
        f"{os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}",
        f"{database}; Python {platform.python_version()}, Django {django.get_version()}",
    ]


def main() -> int:
    _environment()
    args = _arguments()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}; choose among {', '.join(SCENARIOS)}")

    sys.path.insert(0, str(BASE_DIR))
    # Static files are served from the apps' folders (as in the tests): no collectstatic needed.
    warnings.filterwarnings("ignore", message="No directory at")
    import django

    django.setup()
    from django.db import connection

    from tests.perf import admin_lists, draw, imports, member_page, sweep
    from tests.perf.fund import FULL, QUICK, analyse, build_fund
    from tests.perf.harness import markdown_table

    modules = {"draw": draw, "import": imports, "admin": admin_lists, "sweep": sweep, "page": member_page}
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    original_name = connection.settings_dict["NAME"]
    log(f"benchmark database beside {original_name} ({connection.vendor}), keep={args.keep}")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keep, serialize=False)
    try:
        fund = build_fund(sizes, log=log)
        log(f"fund: {fund.members:,} members, {fund.payments:,} payments, {fund.loans:,} loans, "
            f"{fund.first_month}–{fund.last_month}")  # fmt: skip
        rows = []
        for name in SCENARIOS:
            if name in chosen:
                log(f"scenario {name} …")
                # What the previous scenario wrote and rolled back (100,000 import rows three times)
                # is cleaned as autovacuum would in production; this machine's server runs without it,
                # and the dead index entries left behind cost the planner milliseconds per query.
                analyse()
                scenario_rows = modules[name].run(fund, sizes)
                for row in scenario_rows:
                    log(f"  {row.what}: {row.ours.text()} vs {row.baseline.text() if row.baseline else '—'}")
                rows += scenario_rows
        about = machine()
        if args.quick:
            for row in rows:
                row.met = None  # the targets are for the full sizes
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(original_name, verbosity=0, keepdb=False)
    table = markdown_table(rows)
    built = f"built in {fund.built_seconds:,.0f} s" if fund.built_seconds else "kept from an earlier run"
    header = [
        f"# Saghat benchmarks ({'quick' if args.quick else 'full size'})",
        "",
        f"- Run {dt.datetime.now():%Y-%m-%d %H:%M}, {time.perf_counter() - started:,.0f} s in all; "
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after.",
        *[f"- {line}" for line in about],
        f"- Fund ({built} by fund.demo.generate_fund): {fund.members:,} members, {fund.payments:,} payments, "
        f"{fund.loans:,} loans, {fund.first_month}–{fund.last_month}.",
        *(["- Quick mode: sizes too small for the targets, which are judged at full size only."] if args.quick else []),
        "- Times are medians of the repetitions shown (×n); queries are per run (per request for pages);",
        "  ratio = how many times faster ours is than the baseline (below 1: slower).",
        "",
        "",
    ]
    text = "\n".join(header) + table + "\n"
    print("\n" + text)
    args.output.write_text(text, encoding="utf-8")
    log(f"written to {args.output}")
    missed = [row for row in rows if row.met is False]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
