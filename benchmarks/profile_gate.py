"""Profile the gated calls of case 2 with pyinstrument: where the gate's time goes.

    .venv/bin/pip install pyinstrument
    .venv/bin/python benchmarks/profile_gate.py [--calls 500] [--database URL]

Runs case 2's gated view (a fresh approval written before each call, outside the
profile) and prints pyinstrument's call tree of the calls alone, then the time of
each SQL statement of a gated call, measured around the database driver in as many
calls again, without the profiler.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/profile_gate.py")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument(
        "--database", default="postgresql://postgres@127.0.0.1:5432/bench_hyperid_mfa"
    )
    args = parser.parse_args(argv)
    try:
        from pyinstrument import Profiler
    except ImportError:
        parser.exit(2, "pyinstrument is not installed: .venv/bin/pip install pyinstrument\n")

    from benchmarks.run import prepare_database

    prepare_database(args.database)

    from django.db import connection
    from django.test import Client

    from benchmarks import harness
    from benchmarks.cases import gate

    statements: dict[str, list[float]] = collections.defaultdict(list)

    def timing(execute: Callable[..., Any], sql: str, *rest: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, *rest)
        finally:
            statements[" ".join(sql.split()[:3])].append(time.perf_counter() - began)

    amounts = itertools.count(1)
    with harness.project_settings(harness.hyperid_settings("http://127.0.0.1:9")):
        harness.reset_database()
        [user] = harness.make_users(1, "profile")
        client = Client()
        client.force_login(user)
        profiler = Profiler(interval=0.0002)
        # A warm-up, the profiled calls, then as many calls with only the statements
        # timed: the profiler slows Python down, and would inflate those times.
        for n in range(20 + 2 * args.calls):
            data = {"amount": str(next(amounts))}
            gate._approve(client, user, data)
            if n < 20:
                gate._call(client, gate.GATED_PATH, data)
            elif n < 20 + args.calls:
                profiler.start()
                gate._call(client, gate.GATED_PATH, data)
                profiler.stop()
            else:
                with connection.execute_wrapper(timing):
                    gate._call(client, gate.GATED_PATH, data)
        harness.reset_database()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    print("SQL statements of a gated call (median, driver included, not profiled):")
    for sql, times in statements.items():
        print(f"  {len(times) / args.calls:.0f} x {harness.median(times) * 1e3:.2f} ms  {sql} ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
