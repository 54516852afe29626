"""Case 5: throughput of ``request-detail`` for a finished request, against a bare
DRF view that serialises one row of the same table.

A finished request costs HyperID nothing: what remains is the app's own work (its
per-user throttle, the poll interval, the serializer's derived fields) on top of
what any DRF endpoint does (session authentication, one query, JSON). Both views run
in the same gunicorn (2 sync workers), under the same closed-loop load, for many
users: each signed in with a session, each with one finished (denied) request, so
that the throttle (120 polls a minute per user, on, as deployed) never refuses one.
"""

from __future__ import annotations

from django.utils import timezone

from hyperid_mfa.constants import CompleteResult
from hyperid_mfa.models import MFARequest, RequestStatus

from ..harness import (
    BenchmarkError,
    CaseResult,
    Figure,
    Gunicorn,
    LoadResult,
    Options,
    choose_generator,
    hyperid_settings,
    make_users,
    median,
    pending_requests,
    project_settings,
    require_postgresql,
    reset_database,
    run_load,
    session_cookies,
    span,
)

NUMBER = 5
TITLE = "Endpoint throughput: request-detail of a finished request"
GOAL = 0.8


def run(options: Options) -> CaseResult:
    require_postgresql("Case 5")
    generator = choose_generator(options.load_generator)
    users_count = options.pick(1000, 20)
    connections = options.pick(16, 4)
    duration = options.pick(5.0, 0.5)
    warmup = options.pick(2.0, 0.0)
    rounds = options.rounds_for(5)
    hyperid_mfa = hyperid_settings("http://127.0.0.1:9")  # never called: nothing is pending
    with project_settings(hyperid_mfa):
        reset_database()
        users = make_users(users_count, "endpoint")
        # Transaction ids the fake never handed out: nothing will ask HyperID about them.
        owners = [(user, 2_000_000_000 + n) for n, user in enumerate(users)]
        rows = pending_requests(owners, "bench.endpoint")
        MFARequest.objects.filter(pk__in=[row.pk for row in rows]).update(
            status=RequestStatus.COMPLETED,
            complete_result=CompleteResult.DENIED,
            completed_at=timezone.now(),
        )
        cookies = session_cookies(users)
    views = {
        "request-detail": [
            (f"/mfa/requests/{row.pk}/", cookie) for row, cookie in zip(rows, cookies, strict=True)
        ],
        "bare DRF view": [
            (f"/bench/bare/{row.pk}/", cookie) for row, cookie in zip(rows, cookies, strict=True)
        ],
    }
    results: dict[str, list[LoadResult]] = {name: [] for name in views}

    def load(name: str, seconds: float) -> LoadResult:
        outcome = run_load(
            server.url,
            views[name],
            connections=connections,
            duration=seconds,
            generator=generator,
            workdir=options.workdir,
        )
        if outcome.non_2xx or outcome.errors:
            raise BenchmarkError(
                f"{name}: {outcome.non_2xx} answer(s) other than 2xx, {outcome.errors} "
                "failed (a throttle? a missing row?): the throughput would be of errors"
            )
        return outcome

    with Gunicorn(options.workdir, hyperid_mfa) as server:
        if warmup:
            for name in views:
                load(name, warmup)
        order = list(views)
        for _ in range(rounds):
            for name in order:
                results[name].append(load(name, duration))
            order.reverse()
    with project_settings(hyperid_mfa):
        reset_database()
    ours = [outcome.rate for outcome in results["request-detail"]]
    bare = [outcome.rate for outcome in results["bare DRF view"]]
    ratios = [a / b for a, b in zip(ours, bare, strict=True)]
    ratio = median(ratios)
    p50_ours = median([outcome.p50_ms for outcome in results["request-detail"]])
    p50_bare = median([outcome.p50_ms for outcome in results["bare DRF view"]])
    result = CaseResult(NUMBER, TITLE)
    result.figures = [
        Figure(
            "requests/s, request-detail vs a bare DRF view of the row",
            f"{median(ours):,.0f}/s vs {median(bare):,.0f}/s",
            f"{ratio:.2f}x",
            f">= {GOAL}x",
            ratio >= GOAL,
        ),
        Figure("latency p50, request-detail vs bare", f"{p50_ours:.2f} ms vs {p50_bare:.2f} ms"),
    ]
    result.notes = [
        f"{rounds} round(s) of {duration:g} s per view, alternating which goes first, after "
        f"a warm-up of {warmup:g} s each; {connections} closed-loop connections ({generator}) "
        f"over {users_count} users' sessions; gunicorn, 2 sync workers; sessions in the "
        f"database, the throttle's counters in each worker's local memory. Per-round ratios "
        f"{span(ratios)}x.",
    ]
    result.data = {"ours": ours, "bare": bare, "ratios": ratios, "ratio": ratio}
    return result
