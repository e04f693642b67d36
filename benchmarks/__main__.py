"""Run every benchmark: ``python -m benchmarks`` (``make bench``).

Each module ``benchmarks/bench_*.py`` is a benchmark with a
``main(argv)`` that accepts ``--url SERVER`` (a PostgreSQL server where it may
create and drop its own databases) and prints one JSON object per line.
This runner finds them all, gives them one PostgreSQL server and runs them in
turn; their JSON lines go to stdout, progress to stderr.

The server: ``IQMS_BENCH_DATABASE_URL`` when set (e.g.
``postgresql://bench@db.example/postgres``; the user must be allowed to
create databases), otherwise a throwaway cluster started from the installed
PostgreSQL binaries and removed afterwards.

    python -m benchmarks                    # everything
    python -m benchmarks --only queue,events
    python -m benchmarks --list
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time
from types import ModuleType

import benchmarks

ENV_URL = "IQMS_BENCH_DATABASE_URL"


def discover() -> dict[str, ModuleType]:
    """The benchmark modules by short name (``bench_queue`` -> ``queue``)."""
    found = {}
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda i: i.name):
        if info.name.startswith("bench_"):
            module = importlib.import_module(f"benchmarks.{info.name}")
            if callable(getattr(module, "main", None)):
                found[info.name.removeprefix("bench_")] = module
    return found


def main(argv: list[str] | None = None) -> int:
    modules = discover()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run the IQMS benchmarks (JSON lines on stdout)."
    )
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(modules)}")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, module in modules.items():
            summary = (module.__doc__ or "").strip().splitlines()[0:1]
            print(f"{name}: {summary[0] if summary else ''}")
        return 0
    chosen = list(modules)
    if args.only:
        chosen = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in chosen if n not in modules]
        if unknown:
            parser.error(f"unknown benchmark {unknown[0]!r} (known: {', '.join(modules)})")

    from tests.pgcluster import find_or_start_postgres

    url = os.environ.get(ENV_URL) or None
    try:
        server = find_or_start_postgres(url)
    except RuntimeError as exc:
        sys.stderr.write(f"benchmarks: error: {exc}\n")
        return 1
    failed = []
    try:
        for name in chosen:
            sys.stderr.write(f"== {name} ==\n")
            started = time.perf_counter()
            try:
                modules[name].main(["--url", server.admin_url])
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    failed.append(name)
            except Exception as exc:
                sys.stderr.write(f"benchmarks: {name} failed: {type(exc).__name__}: {exc}\n")
                failed.append(name)
            sys.stderr.write(f"== {name}: {time.perf_counter() - started:.0f} s ==\n")
    finally:
        server.stop()
    if failed:
        sys.stderr.write(f"benchmarks: failed: {', '.join(failed)}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
