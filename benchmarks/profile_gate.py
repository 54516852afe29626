"""Profile case 2's calls with pyinstrument: where the gate's time goes.

    .venv/bin/pip install pyinstrument
    .venv/bin/python benchmarks/profile_gate.py [--calls 500] [--view gated|otp|bare]
                                                [--database URL]

Runs one of case 2's views (default: the gated one, with a fresh approval written
before each call, outside the profile; ``otp``: django-otp's check, with a fresh
static token; ``bare``: the view alone) and prints pyinstrument's call tree of the
calls alone, then the time of each SQL statement of a call, measured around the
database driver in as many calls again, without the profiler, and the median
latency of a call of each view, unprofiled, for scale.
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
    parser.add_argument("--view", choices=["gated", "otp", "bare"], default="gated")
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
            statements[gate.statement(sql)].append(time.perf_counter() - began)

    amounts = itertools.count(1)
    latencies: dict[str, list[float]] = collections.defaultdict(list)
    with harness.project_settings(harness.hyperid_settings("http://127.0.0.1:9")):
        harness.reset_database()
        [user] = harness.make_users(1, "profile")
        device = gate._otp_device(user)
        client = Client()
        client.force_login(user)

        def prepared(view: str) -> tuple[str, dict[str, str]]:
            data = {"amount": str(next(amounts))}
            if view == "gated":
                gate._approve(client, user, data)
                return gate.GATED.path, data
            if view == "otp":
                return gate.OTP.path, {**data, "otp_token": gate._otp_token(device)}
            return gate.PLAIN.path, data

        profiler = Profiler(interval=0.0002)
        # A warm-up, the profiled calls, then as many calls with only the statements
        # timed: the profiler slows Python down, and would inflate those times.
        for n in range(20 + 2 * args.calls):
            path, data = prepared(args.view)
            if n < 20:
                gate._call(client, path, data)
            elif n < 20 + args.calls:
                profiler.start()
                gate._call(client, path, data)
                profiler.stop()
            else:
                with connection.execute_wrapper(timing):
                    gate._call(client, path, data)
        # For scale: each view unprofiled, interleaved.
        for _ in range(args.calls):
            for view in ("bare", "gated", "otp"):
                path, data = prepared(view)
                latencies[view].append(gate._call(client, path, data))
        harness.reset_database()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    print(f"SQL statements of a {args.view} call (median, driver included, not profiled):")
    for sql, times in statements.items():
        print(f"  {len(times) / args.calls:.0f} x {harness.median(times) * 1e3:.2f} ms  {sql}")
    print("Median latency of a call, unprofiled, interleaved:")
    for view, times in latencies.items():
        print(f"  {view:5}  {harness.median(times) * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
