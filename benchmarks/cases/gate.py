"""Case 2: what ``@require_mfa_approval`` adds to a view that has its approval.

A trivial ``login_required`` view, bare and behind the gate with its default binding
(method, path, query and form data, and the session). Before each gated call a
fresh approval of exactly that request is written to the table, outside the timed
region, so that the gate finds it, consumes it and lets the view run: the path every
approved action takes. Both go through Django's whole request cycle in this process
(the test client: middleware, session, authentication), against the run's database.
"""

from __future__ import annotations

import itertools
import time
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
PLAIN_PATH = "/bench/plain/"
GATED_PATH = "/bench/gated/"

_transaction_ids = itertools.count(1_000_000_000)


def _approve(client: Client, user: Any, data: dict[str, str]) -> None:
    """Write the approval the gate will find for this POST from this client."""
    request = RequestFactory().post(GATED_PATH, data)
    request.session = client.session
    gate = views.gated_view.mfa_gate  # type: ignore[attr-defined]
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


def run(options: Options) -> CaseResult:
    calls = options.pick(400, 5)
    rounds = options.rounds_for(5)
    amounts = itertools.count(1)
    with project_settings(hyperid_settings("http://127.0.0.1:9")):
        reset_database()
        [user] = make_users(1, "gate")
        client = Client()
        client.force_login(user)
        for _ in range(10):  # warm-up: imports, the connection, the first templates
            data = {"amount": str(next(amounts))}
            _call(client, PLAIN_PATH, data)
            _approve(client, user, data)
            _call(client, GATED_PATH, data)
        MFARequest.objects.filter(user=user).delete()
        plain_medians: list[float] = []
        gated_medians: list[float] = []
        for _ in range(rounds):
            plain: list[float] = []
            gated: list[float] = []
            for _ in range(calls):
                # A new amount each time: a new fingerprint, as every withdrawal has.
                data = {"amount": str(next(amounts))}
                plain.append(_call(client, PLAIN_PATH, data))
                _approve(client, user, data)
                gated.append(_call(client, GATED_PATH, data))
            plain_medians.append(median(plain))
            gated_medians.append(median(gated))
            # What consumed approvals leave behind must not grow the gate's lookups.
            MFARequest.objects.filter(user=user).delete()
        data = {"amount": str(next(amounts))}
        with CaptureQueriesContext(connection) as plain_queries:
            _call(client, PLAIN_PATH, data)
        _approve(client, user, data)
        with CaptureQueriesContext(connection) as gated_queries:
            _call(client, GATED_PATH, data)
        if MFARequest.objects.filter(user=user, consumed_at__isnull=True).exists():
            raise BenchmarkError("an approval was left unconsumed: the gate did not use it")
        reset_database()
    ratios = [g / p for g, p in zip(gated_medians, plain_medians, strict=True)]
    ratio = median(ratios)
    extra = len(gated_queries) - len(plain_queries)
    extra_sql = [query["sql"].split(" ", 1)[0] for query in gated_queries.captured_queries]
    result = CaseResult(NUMBER, TITLE)
    result.figures = [
        Figure(
            "median latency, gated (fresh approval) vs bare",
            f"{median(gated_medians) * 1e3:.2f} ms vs {median(plain_medians) * 1e3:.2f} ms",
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
    ]
    result.notes = [
        f"{rounds} round(s) of {calls} calls of each view, interleaved; the ratio is the "
        f"median of the per-round ratios of median latencies ({span(ratios)}x); "
        f"the gate adds {(median(gated_medians) - median(plain_medians)) * 1e3:.2f} ms.",
        f"Queries of a gated call: {', '.join(extra_sql)} (the bare view's: "
        f"{', '.join(q['sql'].split(' ', 1)[0] for q in plain_queries.captured_queries)}).",
    ]
    result.data = {
        "plain_seconds": plain_medians,
        "gated_seconds": gated_medians,
        "ratios": ratios,
        "ratio": ratio,
        "queries_plain": len(plain_queries),
        "queries_gated": len(gated_queries),
    }
    return result
