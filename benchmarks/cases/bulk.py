"""Case 4: ``manage.py hyperid_mfa_poll`` over a large backlog of pending requests.

5,000 pending requests, HyperID (the fake, in its own process) answering every
status-get in 50 ms. One pass with ``--concurrency 16`` cannot beat the floor of
5,000 x 50 ms / 16; the goal is to stay within 1.5x of it. The sequential loop
(``--concurrency 1``, what a hand-written loop does) would take 5,000 x 50 ms and
more: it is timed on a sample and projected, rather than waited for.
"""

from __future__ import annotations

import io
import time
from typing import Any

from django.core.management import call_command

from hyperid_mfa.models import MFARequest

from ..harness import (
    BenchmarkError,
    CaseResult,
    FakeHyperIDProcess,
    Figure,
    Options,
    hyperid_settings,
    link_hyperid,
    make_users,
    median,
    pending_requests,
    project_settings,
    require_postgresql,
    reset_database,
    span,
)

NUMBER = 4
TITLE = "Bulk refresh: hyperid_mfa_poll"
LATENCY = 0.05
GOAL = 1.5


def _poll(expected: int, **options: int) -> tuple[float, float]:
    """One pass of the command over every due request: (wall, CPU) seconds."""
    out = io.StringIO()
    cpu = time.process_time()
    began = time.perf_counter()
    call_command("hyperid_mfa_poll", stdout=out, stderr=out, **options)
    wall = time.perf_counter() - began
    cpu = time.process_time() - cpu
    if not out.getvalue().startswith(f"Refreshed {expected} pending request(s)"):
        raise BenchmarkError(f"expected {expected} refreshed, the command said: {out.getvalue()}")
    return wall, cpu


def _make_due(user: Any) -> None:
    MFARequest.objects.filter(user=user).update(last_checked_at=None)


def run(options: Options) -> CaseResult:
    require_postgresql("Case 4")
    count = options.pick(5000, 48)
    sample = options.pick(100, 4)
    concurrency = options.pick(16, 4)
    rounds = options.rounds_for(3)
    floor = count * LATENCY / concurrency
    with (
        FakeHyperIDProcess(options.workdir) as fake,
        project_settings(hyperid_settings(fake.url)),
    ):
        reset_database()
        [user] = make_users(1, "bulk")
        token = link_hyperid(fake, user)
        ids = fake.start_transactions(token, count)
        pending_requests([(user, transaction_id) for transaction_id in ids], "bench.bulk")
        fake.set_latency(LATENCY)
        # Warm-up: the command's imports and the client's pool.
        _poll(concurrency, limit=concurrency, concurrency=concurrency)
        sequential_each: list[float] = []
        walls: list[float] = []
        cpu_each: list[float] = []
        for _ in range(rounds):
            _make_due(user)
            wall, _cpu = _poll(sample, limit=sample, concurrency=1)
            sequential_each.append(wall / sample)
            _make_due(user)
            before = fake.calls("status-get")
            wall, cpu = _poll(count, concurrency=concurrency)
            asked = fake.calls("status-get") - before
            if asked != count:
                raise BenchmarkError(f"HyperID was asked {asked} times for {count} requests")
            walls.append(wall)
            cpu_each.append(cpu / count)
        failed = MFARequest.objects.filter(user=user).exclude(last_error="").first()
        if failed is not None or MFARequest.objects.filter(user=user).finished().exists():
            raise BenchmarkError(
                "every request should still be pending, and none failed: "
                f"{failed.last_error if failed else 'one has finished'}"
            )
        reset_database()
    ratios = [wall / floor for wall in walls]
    sequential = median(sequential_each) * count
    result = CaseResult(NUMBER, TITLE)
    result.figures = [
        Figure(
            f"{count:,} requests, --concurrency {concurrency}: wall time vs the floor",
            f"{median(walls):.1f} s vs {floor:.1f} s",
            f"{median(ratios):.2f}x",
            f"<= {GOAL}x",
            median(ratios) <= GOAL,
        ),
        Figure(
            "vs the sequential loop (--concurrency 1, projected from a sample)",
            f"{median(walls):.1f} s vs {sequential:.0f} s",
            f"{sequential / median(walls):.1f}x faster",
        ),
        Figure(
            "poller CPU per refreshed request (all threads)",
            f"{median(cpu_each) * 1e3:.2f} ms",
        ),
    ]
    result.notes = [
        f"{rounds} round(s); HyperID answers in {LATENCY * 1000:.0f} ms; the floor is "
        f"{count:,} x {LATENCY * 1000:.0f} ms / {concurrency}. Wall times "
        f"{span(walls, '{:.1f}')} s. The sequential figure is {sample} requests polled "
        f"with --concurrency 1 each round ({span([s * 1e3 for s in sequential_each], '{:.1f}')}"
        f" ms each) times {count:,}.",
        "The CPU figure bounds the pass: one process, one GIL; at "
        f"{median(cpu_each) * 1e3:.2f} ms a request it cannot take less than "
        f"{median(cpu_each) * count:.1f} s whatever the concurrency.",
    ]
    result.data = {
        "walls": walls,
        "floor": floor,
        "ratios": ratios,
        "sequential_each": sequential_each,
        "cpu_each": cpu_each,
    }
    return result
