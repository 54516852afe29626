"""Run the benchmarks and write benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/run.py                 # all seven cases, ~7 minutes
    .venv/bin/python benchmarks/run.py --cases 1,2     # some of them: printed, not written
    .venv/bin/python benchmarks/run.py --smoke         # seconds: does the harness work?
    .venv/bin/python benchmarks/run.py soak            # 200 users, 10 minutes, faults
                                                       # (benchmarks/soak.py; soak --help)
    .venv/bin/python benchmarks/run.py million         # 1,000,000 requests: plans, timings
                                                       # (benchmarks/million.py)

Needs PostgreSQL (``--database``, default the ``bench_hyperid_mfa`` database on
127.0.0.1:5432, created if missing) and, for cases 3 and 5, wrk if installed (else a
Python load generator). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(REPO))

DEFAULT_OUTPUT = REPO / "benchmarks" / "RESULTS.md"


def _cases(text: str) -> list[int]:
    try:
        numbers = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give case numbers, e.g. 1,3") from None
    if not numbers or not set(numbers) <= {1, 2, 3, 4, 5, 6, 7}:
        raise argparse.ArgumentTypeError(f"{text!r}: cases are numbered 1 to 7")
    return numbers


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def default_database() -> str:
    return os.environ.get(
        "HYPERID_MFA_BENCH_DATABASE", "postgresql://postgres@127.0.0.1:5432/bench_hyperid_mfa"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="Benchmark django-hyperid-mfa against the naive way, as ratios in one run.",
    )
    parser.add_argument(
        "--cases", type=_cases, default=[1, 2, 3, 4, 5, 6, 7], help="e.g. 1,3 (default: all)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny counts, one round: checks the harness"
    )
    parser.add_argument(
        "--rounds", type=_positive, help="rounds per case (default: each case's own)"
    )
    parser.add_argument(
        "--database",
        default=default_database(),
        help="PostgreSQL URL (default: $HYPERID_MFA_BENCH_DATABASE or %(default)s)",
    )
    parser.add_argument(
        "--load-generator",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="for cases 3 and 5: wrk, a Python one, or wrk when installed (default)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help=f"where to write the results (default: {DEFAULT_OUTPUT.relative_to(REPO)}, "
        "and only after a full run of all seven cases without --smoke in which every case "
        "succeeded: a partial run never replaces the full table)",
    )
    return parser.parse_args(argv)


def prepare_database(url: str) -> None:
    """Create the PostgreSQL database if it does not exist yet, then set Django up on it
    and migrate."""
    # Before the settings module is first imported: it reads the URL as it loads.
    os.environ["HYPERID_MFA_BENCH_DATABASE"] = url
    from benchmarks.project.settings import database_from_url

    db = database_from_url(url)
    if db["ENGINE"].endswith("postgresql"):
        import psycopg
        from psycopg import sql
        from psycopg.conninfo import make_conninfo

        given = {
            "user": db["USER"],
            "password": db["PASSWORD"],
            "host": db["HOST"],
            "port": db["PORT"],
        }
        conninfo = make_conninfo(dbname="postgres", **{k: v for k, v in given.items() if v})
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
                ).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
        except psycopg.OperationalError as err:
            raise SystemExit(f"benchmarks: cannot reach PostgreSQL at {url}: {err}") from None
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.project.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["soak"]:
        from benchmarks import soak

        return soak.main(given[1:])
    if given[:1] == ["million"]:
        from benchmarks import million

        return million.main(given[1:])
    args = parse_args(argv)
    prepare_database(args.database)

    from benchmarks import harness, report
    from benchmarks.cases import CASES

    started = time.monotonic()
    load_start = harness.load_average()
    print(
        f"benchmarks: load average {load_start}; cases {','.join(map(str, args.cases))}", flush=True
    )
    results = []
    failed = []
    with tempfile.TemporaryDirectory(prefix="hyperid-mfa-bench-") as workdir:
        options = harness.Options(
            smoke=args.smoke,
            rounds=args.rounds,
            load_generator=args.load_generator,
            workdir=Path(workdir),
        )
        for number in args.cases:
            case = CASES[number]
            print(f"\n== {number}. {case.TITLE}", flush=True)
            began = time.monotonic()
            try:
                result = case.run(options)
            except harness.BenchmarkError as err:
                print(f"   FAILED: {err}", flush=True)
                failed.append(number)
                continue
            except Exception:
                traceback.print_exc()
                failed.append(number)
                continue
            result.seconds = time.monotonic() - began
            results.append(result)
            print(report.table([result]), flush=True)
    info = report.RunInfo(
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        command=" ".join(
            [
                "python",
                "benchmarks/run.py",
                *map(shlex.quote, argv if argv is not None else sys.argv[1:]),
            ]
        ),
        cpu=harness.cpu_model(),
        cores=os.cpu_count() or 0,
        load_start=load_start,
        load_end=harness.load_average(),
        versions=harness.versions(),
        seconds=time.monotonic() - started,
        smoke=args.smoke,
    )
    print(f"\n{report.table(results)}\n\nload average at the end: {info.load_end}")
    output = args.output
    if output is None and not args.smoke and len(args.cases) == len(CASES):
        if failed:
            print(f"not writing {DEFAULT_OUTPUT}: a case failed (--output writes anyway)")
        else:
            output = DEFAULT_OUTPUT
    if output is not None and results:
        existing = output.read_text(encoding="utf-8") if output.exists() else None
        output.write_text(
            report.markdown(results, info, report.kept_part(existing)), encoding="utf-8"
        )
        print(f"wrote {output}")
    if failed:
        print(f"benchmarks: case(s) {', '.join(map(str, failed))} failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
