"""A million rows: the gate, the poller, the API and the admin over 1,000,000 requests.

    .venv/bin/python benchmarks/run.py million             # about 5 minutes
    .venv/bin/python benchmarks/run.py million --rows 20000 --pending 1000   # seconds

On PostgreSQL (``--database``, as ``benchmarks/run.py``; the run empties the
requests of its own users first), in this process through Django's test client:

1. The gate's median on an empty table: a trivial gated view with a fresh approval
   each call (case 2's way: the approval written outside the timed region).
2. ``--rows`` requests of 5,000 users written by ``INSERT ... SELECT
   generate_series``, ``--pending`` of them pending (created in the last five
   minutes), the others finished over the last 90 days (78% approved, most consumed;
   denied, expired, canceled, failed), then ``VACUUM ANALYZE``.
3. The gate's median again (the same user now owns 200 requests among them); goal:
   within 1.5x of the empty table's.
4. The plans (``EXPLAIN (ANALYZE, BUFFERS)``; statements that write run inside a
   transaction rolled back) of every statement on the requests' table of: a gated call,
   the poller's claim of a batch, the API's list (and ``?state=pending``), and the
   admin's changelist (and its ``status`` filter). None may read the table by a
   sequential scan.
5. The admin changelist's median over 5 views (after a first one); goal < 300 ms.
6. ``hyperid_mfa_purge --older-than 30d``: the wall time of each batch's transaction
   (its first DELETE to its last: what holds the batch's row locks); goal < 1 s. A
   probe meanwhile, every 100 ms, updates a pending request and inserts one (what
   the gate and the poller do), each in its own transaction: its longest round is
   reported (on a loaded machine it is mostly waiting for the CPU and the disk).

It exits non-zero when a goal is missed or a plan scans the table.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from typing import Any

#: Goals.
GATE_RATIO = 1.5
ADMIN_MS = 300.0
LOCK_SECONDS = 1.0
USERS = 5000
TAG = "mil"
CALLS = 60

ACTIONS = ["payments.withdraw", "payments.transfer", "account.delete", "bench.trivial"]
#: The first ``pending`` rows are pending, sent in the last 5 minutes; the others were
#: sent 10 minutes to 90 days ago and decided 20 s later; a third of the pending ones
#: were never checked.
_ROWS = {
    "drawn": """
        SELECT g, random() * 100 AS roll, g <= %(pending)s AS pending,
               CASE WHEN g <= %(pending)s
                    THEN now() - random() * interval '5 minutes'
                    ELSE now() - interval '10 minutes' - random() * interval '90 days' END
                   AS created
        FROM generate_series(1, %(count)s) AS g""",
    "completed_at": "CASE WHEN pending THEN NULL ELSE created + interval '20 seconds' END",
    "consumed_at": "CASE WHEN NOT pending AND roll < 70 THEN created + interval '40 seconds' END",
    "last_checked_at": "CASE WHEN pending AND mod(g, 3) = 0 THEN NULL ELSE created END",
    "check_count": "2",
}


def gate_median(client: Any, user: Any, calls: int) -> float:
    """Median seconds of a gated call that finds its approval."""
    from .cases.gate import GATED, _approve, _call
    from .harness import median

    took = []
    for n in range(calls):
        data = {"n": str(n)}
        _approve(client, user, data)
        took.append(_call(client, GATED.path, data))
    return median(took)


def captured(call: Callable[[], Any]) -> list[str]:
    """The statements on the requests' table that ``call`` runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from hyperid_mfa.models import MFARequest

    with CaptureQueriesContext(connection) as capture:
        call()
    table = MFARequest._meta.db_table
    # An INSERT finds no row, so it has no plan worth reading.
    return [
        query["sql"]
        for query in capture.captured_queries
        if table in query["sql"] and not query["sql"].startswith("INSERT")
    ]


def explain(sql: str) -> str:
    """The plan of ``sql``, run (a write inside a transaction rolled back)."""
    from django.db import connection, transaction

    class _Rollback(Exception):
        pass

    lines: list[str] = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            lines = [row[0] for row in cursor.fetchall()]
            raise _Rollback
    except _Rollback:
        pass
    return "\n".join(lines)


def plans(client: Any, admin: Any, user: Any) -> dict[str, list[tuple[str, str]]]:
    from django.db import transaction

    from hyperid_mfa.models import database_now
    from hyperid_mfa.services import poller

    from .cases.gate import GATED, _approve, _call

    data = {"n": "plan"}

    def gated() -> None:
        _call(client, GATED.path, data)

    def claim() -> None:
        with transaction.atomic():
            poller._claim_batch(poller.POLL_BATCH_SIZE, database_now())
            transaction.set_rollback(True)

    def get(who: Any, path: str) -> Callable[[], None]:
        def call() -> None:
            answer = who.get(path)
            if answer.status_code != 200:
                raise RuntimeError(f"GET {path}: {answer.status_code}")

        return call

    paths = {
        "gate (a gated call that consumes its approval)": gated,
        "poller's claim of a batch": claim,
        "API list": get(client, "/mfa/requests/"),
        "API list ?state=pending": get(client, "/mfa/requests/?state=pending"),
        "admin changelist": get(admin, "/admin/hyperid_mfa/mfarequest/"),
        "admin changelist ?status__exact=0": get(
            admin, "/admin/hyperid_mfa/mfarequest/?status__exact=0"
        ),
    }
    _approve(client, user, data)  # outside the capture: the approval the call consumes
    found: dict[str, list[tuple[str, str]]] = {}
    for name, call in paths.items():
        found[name] = [(sql, explain(sql)) for sql in captured(call)]
    return found


def probe(stop: threading.Event, waits: list[float], pending_pk: Any, user_pk: Any) -> None:
    """Every 100 ms: update a pending request and insert (then delete) one, each in its
    own transaction on a connection of its own; the longest each took."""
    import uuid

    from django.db import connections

    try:
        with connections["default"].cursor() as cursor:
            table = "hyperid_mfa_mfarequest"
            n = 0
            while not stop.is_set():
                n += 1
                began = time.perf_counter()
                cursor.execute(
                    f"UPDATE {table} SET check_count = check_count WHERE id = %s",  # noqa: S608
                    [pending_pk],
                )
                new = uuid.uuid4()
                cursor.execute(
                    f"INSERT INTO {table} (id, user_id, transaction_id, action, question, "  # noqa: S608
                    "code, fingerprint, status, created_at, expires_at, check_count, "
                    "last_result, last_error) VALUES (%s, %s, %s, 'probe', '?', '42', '', 0, "
                    "now(), now() + interval '5 minutes', 0, 0, '')",
                    [new, user_pk, 9_000_000_000_000 + n],
                )
                cursor.execute(f"DELETE FROM {table} WHERE id = %s", [new])  # noqa: S608
                waits.append(time.perf_counter() - began)
                stop.wait(0.1)
    finally:
        connections["default"].close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py million")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=50_000)
    parser.add_argument("--database", default=None, help="PostgreSQL URL (as benchmarks/run.py)")
    args = parser.parse_args(argv)

    from benchmarks import run as runner

    runner.prepare_database(args.database or runner.default_database())

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from hyperid_mfa.models import MFARequest

    from .harness import (
        USER_PREFIX,
        hyperid_settings,
        load_average,
        make_users,
        project_settings,
        write_requests,
    )
    from .harness import median as median_of

    print(f"million: load average {load_average()}; {args.rows} rows", flush=True)
    user_model = get_user_model()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {MFARequest._meta.db_table} CASCADE")
    user_model._default_manager.filter(username__startswith=f"{USER_PREFIX}{TAG}-").delete()
    users = make_users(USERS, TAG)
    user = users[0]
    admin = user_model._default_manager.filter(username="bench-admin").first()
    if admin is None:
        admin = user_model._default_manager.create_superuser("bench-admin", "", None)
    failures: list[str] = []
    with project_settings(hyperid_settings("http://127.0.0.1:9")):
        client, staff = Client(), Client()
        client.force_login(user)
        staff.force_login(admin)
        gate_median(client, user, 10)  # warm-up
        empty = gate_median(client, user, CALLS)
        MFARequest.objects.all().delete()
        print(f"  gate on an empty table: median {empty * 1000:.2f} ms", flush=True)

        began = time.monotonic()
        write_requests(
            MFARequest._meta.db_table,
            user_model._meta.db_table,
            {
                "first_id": 5_000_000_000,
                "actions": ACTIONS,
                "count": args.rows,
                "pending": args.pending,
                "prefix": f"{USER_PREFIX}{TAG}-%",
            },
            **_ROWS,
        )
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {MFARequest._meta.db_table}")
        print(f"  {args.rows} rows written in {time.monotonic() - began:.0f} s", flush=True)

        gate_median(client, user, 10)
        full = gate_median(client, user, CALLS)
        ratio = full / empty
        print(
            f"  gate over {args.rows} rows: median {full * 1000:.2f} ms, {ratio:.2f}x the empty "
            f"table's (goal <= {GATE_RATIO}x)",
            flush=True,
        )
        if ratio > GATE_RATIO:
            failures.append(f"gate {ratio:.2f}x its empty-table median")

        found = plans(client, staff, user)
        for name, statements in found.items():
            print(f"\n### {name}: {len(statements)} statement(s) on the table")
            for sql, plan in statements:
                print(f"\n    {sql[:300]}{'...' if len(sql) > 300 else ''}")
                print("\n".join(f"    | {shorter(line)}" for line in plan.splitlines()))
                if "Seq Scan on hyperid_mfa_mfarequest" in plan:
                    failures.append(f"{name}: a sequential scan of the table")

        staff.get("/admin/hyperid_mfa/mfarequest/")
        admin_ms = []
        for _ in range(5):
            began = time.perf_counter()
            answer = staff.get("/admin/hyperid_mfa/mfarequest/")
            admin_ms.append((time.perf_counter() - began) * 1000)
            if answer.status_code != 200:
                failures.append(f"admin changelist answered {answer.status_code}")
        admin_median = median_of(admin_ms)
        print(
            f"\n  admin changelist: median {admin_median:.0f} ms of 5 "
            f"({', '.join(f'{ms:.0f}' for ms in admin_ms)}) (goal < {ADMIN_MS:g} ms)",
            flush=True,
        )
        if admin_median >= ADMIN_MS:
            failures.append(f"admin changelist {admin_median:.0f} ms")

        pending = MFARequest.objects.filter(status=0).values_list("pk", flat=True).first()
        old = MFARequest.objects.finished().filter(created_at__lt=_days_ago(30)).count()
        stop = threading.Event()
        waits: list[float] = []
        prober = threading.Thread(target=probe, args=(stop, waits, pending, user.pk))
        prober.start()
        began = time.monotonic()
        try:
            clock = StatementClock()
            with connection.execute_wrapper(clock):
                call_command("hyperid_mfa_purge", "--older-than", "30d", verbosity=0)
        finally:
            stop.set()
            prober.join()
        took = time.monotonic() - began
        batches = purge_batches(clock.statements)
        longest_batch = max(batches) if batches else 0.0
        print(
            f"  purge: {len(batches)} batches; the longest batch's transaction (first "
            f"DELETE to last) {longest_batch * 1000:.0f} ms, median "
            f"{median_of(batches) * 1000:.0f} ms (goal < {LOCK_SECONDS:g} s)",
            flush=True,
        )
        if longest_batch >= LOCK_SECONDS:
            failures.append(f"a purge batch held its locks {longest_batch:.2f} s")
        longest = max(waits) if waits else 0.0
        left = MFARequest.objects.count()
        print(
            f"  purge --older-than 30d: {old} rows in {took:.0f} s "
            f"({old / max(took, 1e-9):.0f}/s); "
            f"probe: {len(waits)} rounds, median {median_of(waits) * 1000:.1f} ms, longest "
            f"{longest * 1000:.0f} ms (goal < {LOCK_SECONDS:g} s); {left} rows left",
            flush=True,
        )

    print(f"load average at the end: {load_average()}")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


class StatementClock:
    """A database execute wrapper: when each statement began and ended (unbounded,
    unlike Django's query log)."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, float, float]] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((sql, began, time.perf_counter()))


def purge_batches(statements: list[tuple[str, float, float]]) -> list[float]:
    """The wall time of each purge batch's transaction: from its first DELETE (the
    approval windows the batch opened) to its last (the rows, in chunks), between
    which its row locks are held. The SELECTs of the batch's ids and rows come first,
    outside it."""
    batches: list[float] = []
    first = last = None
    for sql, began, ended in statements:
        if sql.startswith("DELETE"):
            first = began if first is None else first
            last = ended
        elif first is not None and last is not None:
            batches.append(last - first)
            first = last = None
    if first is not None and last is not None:
        batches.append(last - first)
    return batches


def shorter(line: str, most: int = 160) -> str:
    """A plan's line, a long list of ids in it cut short."""
    return line if len(line) <= most else line[: most - 3] + "..."


def _days_ago(days: int) -> Any:
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() - timedelta(days=days)
