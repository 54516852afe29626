"""Case 2: what ``@require_mfa_approval`` adds to a view that has its approval.

A trivial ``login_required`` view, bare and behind the gate with its default binding
(method, path, query and form data, and the session). Before each gated call a
fresh approval of exactly that request is written to the table, outside the timed
region, so that the gate finds it, consumes it and lets the view run: the path every
approved action takes. Both go through Django's whole request cycle in this process
(the test client: middleware, session, authentication), against the run's database.

For scale, the same pair of a view that acts (it writes one row) is timed alongside:
the goal is for the trivial view, the second ratio is nearer what a gated view pays.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hyperid_mfa import fingerprint
from hyperid_mfa.constants import CompleteResult
from hyperid_mfa.models import MFARequest, RequestStatus

from ..harness import (
    BenchmarkError,
    CaseResult,
    Figure,
    Options,
    hyperid_settings,
    make_users,
    median,
    project_settings,
    reset_database,
    span,
)
from ..project import views

NUMBER = 2
TITLE = "Gate overhead on a trivial view"
GOAL_RATIO = 1.5
GOAL_QUERIES = 3

_transaction_ids = itertools.count(1_000_000_000)


@dataclass(frozen=True)
class Pair:
    """A view bare and behind the gate."""

    plain: str
    gated: str
    gated_view: Callable[..., Any]


TRIVIAL = Pair("/bench/plain/", "/bench/gated/", views.gated_view)
WRITING = Pair("/bench/plain-write/", "/bench/gated-write/", views.gated_write_view)
# Kept for profile_gate.py: the trivial pair's gated path.
GATED_PATH = TRIVIAL.gated


def _approve(client: Client, user: Any, data: dict[str, str], pair: Pair = TRIVIAL) -> None:
    """Write the approval the gate will find for this POST from this client."""
    request = RequestFactory().post(pair.gated, data)
    request.session = client.session
    gate = pair.gated_view.mfa_gate  # type: ignore[attr-defined]
    now = timezone.now()
    MFARequest.objects.create(
        user=user,
        transaction_id=next(_transaction_ids),
        action=gate.action,
        question="Benchmark?",
        code="42",
        fingerprint=fingerprint.compute(request, bind=gate.bind),
        status=RequestStatus.COMPLETED,
        complete_result=CompleteResult.APPROVED,
        created_at=now,
        completed_at=now,
        expires_at=now + timedelta(minutes=5),
    )


def _call(client: Client, path: str, data: dict[str, str]) -> float:
    began = time.perf_counter()
    response = client.post(path, data)
    took = time.perf_counter() - began
    if response.status_code != 200:
        raise BenchmarkError(f"POST {path} answered {response.status_code}, not 200")
    return took


@dataclass
class Series:
    """Per-round median latencies of one pair."""

    plain: list[float] = field(default_factory=list)
    gated: list[float] = field(default_factory=list)

    def ratios(self) -> list[float]:
        return [g / p for g, p in zip(self.gated, self.plain, strict=True)]


def run(options: Options) -> CaseResult:
    calls = options.pick(400, 5)
    rounds = options.rounds_for(5)
    amounts = itertools.count(1)
    # A new amount each call: a new fingerprint, as every withdrawal has.
    fresh = lambda: {"amount": str(next(amounts))}  # noqa: E731
    series = {TRIVIAL: Series(), WRITING: Series()}
    with project_settings(hyperid_settings("http://127.0.0.1:9")):
        reset_database()
        [user] = make_users(1, "gate")
        client = Client()
        client.force_login(user)
        for pair in series:  # warm-up: imports, the connection
            for _ in range(10):
                data = fresh()
                _call(client, pair.plain, data)
                _approve(client, user, data, pair)
                _call(client, pair.gated, data)
        MFARequest.objects.filter(user=user).delete()
        for _ in range(rounds):
            times: dict[Pair, tuple[list[float], list[float]]] = {p: ([], []) for p in series}
            for _ in range(calls):
                for pair, (plain, gated) in times.items():
                    data = fresh()
                    plain.append(_call(client, pair.plain, data))
                    _approve(client, user, data, pair)
                    gated.append(_call(client, pair.gated, data))
            for pair, (plain, gated) in times.items():
                series[pair].plain.append(median(plain))
                series[pair].gated.append(median(gated))
            # What consumed approvals leave behind must not grow the gate's lookups.
            MFARequest.objects.filter(user=user).delete()
        data = fresh()
        with CaptureQueriesContext(connection) as plain_queries:
            _call(client, TRIVIAL.plain, data)
        _approve(client, user, data)
        with CaptureQueriesContext(connection) as gated_queries:
            _call(client, TRIVIAL.gated, data)
        if MFARequest.objects.filter(user=user, consumed_at__isnull=True).exists():
            raise BenchmarkError("an approval was left unconsumed: the gate did not use it")
        reset_database()
    trivial, writing = series[TRIVIAL], series[WRITING]
    ratios = trivial.ratios()
    ratio = median(ratios)
    added = median(trivial.gated) - median(trivial.plain)
    extra = len(gated_queries) - len(plain_queries)
    extra_sql = [query["sql"].split(" ", 1)[0] for query in gated_queries.captured_queries]

    def ms(values: list[float]) -> str:
        return f"{median(values) * 1e3:.2f} ms"

    result = CaseResult(NUMBER, TITLE)
    result.figures = [
        Figure(
            "median latency, gated (fresh approval) vs bare",
            f"{ms(trivial.gated)} vs {ms(trivial.plain)}",
            f"{ratio:.2f}x",
            f"<= {GOAL_RATIO}x",
            ratio <= GOAL_RATIO,
        ),
        Figure(
            "SQL queries per call, gated vs bare",
            f"{len(gated_queries)} vs {len(plain_queries)}",
            f"+{extra}",
            f"<= +{GOAL_QUERIES}",
            extra <= GOAL_QUERIES,
        ),
        Figure(
            "the same on a view that writes one row (for scale)",
            f"{ms(writing.gated)} vs {ms(writing.plain)}",
            f"{median(writing.ratios()):.2f}x",
        ),
    ]
    result.notes = [
        f"{rounds} round(s) of {calls} calls of each view, interleaved; the ratio is the "
        f"median of the per-round ratios of median latencies ({span(ratios)}x); "
        f"the gate adds {added * 1e3:.2f} ms.",
        f"Queries of a gated call: {', '.join(extra_sql)} (the bare view's: "
        f"{', '.join(q['sql'].split(' ', 1)[0] for q in plain_queries.captured_queries)}).",
        "The view that writes updates the user's last_login: the least a view worth "
        f"gating does (per-round ratios {span(writing.ratios())}x).",
    ]
    result.data = {
        "plain_seconds": trivial.plain,
        "gated_seconds": trivial.gated,
        "ratios": ratios,
        "ratio": ratio,
        "writing_ratios": writing.ratios(),
        "queries_plain": len(plain_queries),
        "queries_gated": len(gated_queries),
    }
    return result
