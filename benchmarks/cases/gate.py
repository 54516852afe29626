"""Case 2: what ``@require_mfa_approval`` adds to a view that has its approval, beside
what its peer, django-otp's single-use check, adds to the same view.

Three twins of a trivial ``login_required`` view: bare; behind the gate with its
default binding (method, path, query and form data, and the session); and behind
django-otp's check, where the user's static device consumes a token posted with the
request (``StaticDevice.verify_token``, which deletes it). Before each call of the
three, a fresh approval of exactly the gated request is written to the gate's
table and a fresh static token to django-otp's, outside the timed region, so that
each check finds what it consumes: the path every approved action takes. The three
are timed one after the other, their order rotating from call to call, in the same
rounds; all go through Django's whole request cycle in this process (the test
client: middleware, session, authentication), against the run's database.

The share of django-otp's added cost is ``(gated - bare) / (otp - bare)`` of one
round's median latencies; the figure is the median of the rounds' shares.

SQL statements are counted on one call of each view, and on the path where the gate
asks HyperID itself: a push is sent (a gated call answered "pending"), approved at a
FakeHyperID served on loopback in a process of its own, and then the gated call
claims the request, reads the user's token, asks HyperID, learns of the approval
and consumes it.

For scale, the same pair of a view that acts (it writes one row) is timed alongside:
the goals are for the trivial view, the other ratio is nearer what a gated view pays.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hyperid_mfa.constants import CompleteResult
from hyperid_mfa.gate import fingerprint
from hyperid_mfa.models import MFARequest, RequestStatus

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
    project_settings,
    reset_database,
    span,
)
from ..project import views

NUMBER = 2
TITLE = "Gate overhead on a trivial view, beside django-otp's check"
#: Latency of the gated view against the bare one.
GOAL_RATIO = 1.5
#: What the gate adds, as a share of what django-otp's check adds.
GOAL_SHARE = 0.5
#: SQL statements the gate adds when the approval is already known here...
GOAL_QUERIES = 2
#: ... and when it asks HyperID itself, then consumes the approval it learns of.
GOAL_QUERIES_INLINE = 4
#: The apps the django-otp view needs (benchmarks/project/settings.py installs them).
OTP_APPS = ("django_otp", "django_otp.plugins.otp_static")

_transaction_ids = itertools.count(1_000_000_000)


@dataclass(frozen=True)
class View:
    name: str
    path: str
    gated_view: Callable[..., Any] | None = None


PLAIN = View("bare", "/bench/plain/")
GATED = View("gated", "/bench/gated/", views.gated_view)
OTP = View("django-otp", "/bench/otp/")
PLAIN_WRITE = View("bare, writing", "/bench/plain-write/")
GATED_WRITE = View("gated, writing", "/bench/gated-write/", views.gated_write_view)
#: Timed in the same rounds, in rotating order.
TRIO = (PLAIN, GATED, OTP)
WRITING = (PLAIN_WRITE, GATED_WRITE)
# Kept for profile_gate.py: the trivial view's gated path.
GATED_PATH = GATED.path


def _approve(client: Client, user: Any, data: dict[str, str], view: View = GATED) -> None:
    """Write the approval the gate will find for this POST from this client."""
    if view.gated_view is None:
        raise BenchmarkError(f"{view.name} is not gated")
    request = RequestFactory().post(view.path, data)
    request.session = client.session
    gate = view.gated_view.mfa_gate  # type: ignore[attr-defined]
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


def _otp_device(user: Any) -> Any:
    """The user's django-otp static device (the tokens are added call by call)."""
    missing = [app for app in OTP_APPS if not apps.is_installed(app)]
    if missing:
        raise BenchmarkError(
            f"case 2 compares the gate with django-otp: add {', '.join(missing)} to "
            "INSTALLED_APPS (benchmarks/project/settings.py has them) and migrate"
        )
    from django_otp.plugins.otp_static.models import StaticDevice

    return StaticDevice.objects.create(user=user, name="backup codes", confirmed=True)


def _otp_token(device: Any) -> str:
    """A fresh static token of ``device``: the one the next django-otp call consumes."""
    from django_otp.plugins.otp_static.models import StaticToken

    return str(device.token_set.create(token=StaticToken.random_token()).token)


def _post(client: Client, path: str, data: dict[str, str], status: int = 200) -> Any:
    response = client.post(path, data, HTTP_ACCEPT="application/json")
    if response.status_code != status:
        raise BenchmarkError(f"POST {path} answered {response.status_code}, not {status}")
    return response


def _call(client: Client, path: str, data: dict[str, str]) -> float:
    began = time.perf_counter()
    response = client.post(path, data)
    took = time.perf_counter() - began
    if response.status_code != 200:
        raise BenchmarkError(f"POST {path} answered {response.status_code}, not 200")
    return took


def _rotations(items: Sequence[View]) -> Iterator[Sequence[View]]:
    """``items`` in each of its rotations in turn, forever: no view always goes first."""
    for n in itertools.count():
        shift = n % len(items)
        yield (*items[shift:], *items[:shift])


_TABLE = re.compile(r'\b(?:FROM|UPDATE|INTO)\s+"?([\w.]+)"?', re.IGNORECASE)


def statement(sql: str) -> str:
    """``UPDATE hyperid_mfa_mfarequest ... RETURNING``: what a statement does, and where."""
    verb = sql.split(None, 1)[0].upper()
    table = _TABLE.search(sql)
    described = f"{verb} {table.group(1)}" if table else verb
    return described + (" ... RETURNING" if " RETURNING " in sql.upper() else "")


def _captured(client: Client, path: str, data: dict[str, str]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        _call(client, path, data)
    return [query["sql"] for query in captured.captured_queries]


def _inline_refresh(
    fake: FakeHyperIDProcess, client: Client, user: Any, data: dict[str, str]
) -> tuple[list[str], list[str]]:
    """The statements of the bare view, then of the gated call that asks HyperID about
    the pending request of ``data``, learns it was approved and consumes it."""
    _post(client, GATED.path, data, status=403)  # the push: answered "pending"
    pushed = MFARequest.objects.get(user=user, status=RequestStatus.PENDING)
    fake.approve(pushed.transaction_id)
    asked = fake.calls("status-get")
    plain = _captured(client, PLAIN.path, data)
    gated = _captured(client, GATED.path, data)
    pushed.refresh_from_db()
    if not pushed.is_consumed or fake.calls("status-get") != asked + 1:
        raise BenchmarkError(
            "the gated call did not learn the approval from HyperID and consume it"
        )
    return plain, gated


def run(options: Options) -> CaseResult:
    calls = options.pick(400, 5)
    rounds = options.rounds_for(5)
    amounts = itertools.count(1)
    # A new amount each call: a new fingerprint, as every withdrawal has.
    fresh = lambda: {"amount": str(next(amounts))}  # noqa: E731
    medians: dict[View, list[float]] = {view: [] for view in (*TRIO, *WRITING)}
    with FakeHyperIDProcess(options.workdir) as fake, project_settings(hyperid_settings(fake.url)):
        reset_database()
        [user] = make_users(1, "gate")
        device = _otp_device(user)
        client = Client()
        client.force_login(user)
        orders = _rotations(TRIO)
        write_orders = _rotations(WRITING)

        def one_of_each() -> dict[View, float]:
            data, written = fresh(), fresh()
            _approve(client, user, data)
            _approve(client, user, written, GATED_WRITE)
            sent = {
                PLAIN: data,
                GATED: data,
                OTP: {**data, "otp_token": _otp_token(device)},
                PLAIN_WRITE: written,
                GATED_WRITE: written,
            }
            took = {}
            for view in (*next(orders), *next(write_orders)):
                took[view] = _call(client, view.path, sent[view])
            return took

        for _ in range(10):  # warm-up: imports, the connection
            one_of_each()
        MFARequest.objects.filter(user=user).delete()
        for _ in range(rounds):
            times: dict[View, list[float]] = {view: [] for view in medians}
            for _ in range(calls):
                for view, took in one_of_each().items():
                    times[view].append(took)
            for view, values in times.items():
                medians[view].append(median(values))
            # What consumed approvals leave behind must not grow the gate's lookups.
            MFARequest.objects.filter(user=user).delete()
        data = fresh()
        _approve(client, user, data)
        sql = {
            PLAIN: _captured(client, PLAIN.path, data),
            GATED: _captured(client, GATED.path, data),
            OTP: _captured(client, OTP.path, {**data, "otp_token": _otp_token(device)}),
        }
        if MFARequest.objects.filter(user=user, consumed_at__isnull=True).exists():
            raise BenchmarkError("an approval was left unconsumed: the gate did not use it")
        if device.token_set.exists():
            raise BenchmarkError("a static token was left unconsumed: django-otp did not use it")
        link_hyperid(fake, user)
        inline_plain, inline = _inline_refresh(fake, client, user, fresh())
        reset_database()
    return _result(rounds, calls, medians, sql, inline_plain, inline)


def _result(
    rounds: int,
    calls: int,
    medians: dict[View, list[float]],
    sql: dict[View, list[str]],
    inline_plain: list[str],
    inline: list[str],
) -> CaseResult:
    plain, gated, otp = medians[PLAIN], medians[GATED], medians[OTP]
    ratios = [g / p for g, p in zip(gated, plain, strict=True)]
    otp_ratios = [o / p for o, p in zip(otp, plain, strict=True)]
    shares = [
        (g - p) / (o - p) if o > p else math.inf for g, o, p in zip(gated, otp, plain, strict=True)
    ]
    writing_ratios = [
        g / p for g, p in zip(medians[GATED_WRITE], medians[PLAIN_WRITE], strict=True)
    ]
    ratio, otp_ratio, share = median(ratios), median(otp_ratios), median(shares)
    gate_adds = median(gated) - median(plain)
    otp_adds = median(otp) - median(plain)
    counts = {view: len(statements) for view, statements in sql.items()}
    extra = counts[GATED] - counts[PLAIN]
    otp_extra = counts[OTP] - counts[PLAIN]
    inline_extra = len(inline) - len(inline_plain)

    def ms(values: list[float]) -> str:
        return f"{median(values) * 1e3:.2f} ms"

    def listing(statements: list[str]) -> str:
        return ", ".join(statement(sql) for sql in statements)

    result = CaseResult(NUMBER, TITLE)
    result.figures = [
        Figure(
            "median latency, gated (fresh approval) vs bare",
            f"{ms(gated)} vs {ms(plain)}",
            f"{ratio:.2f}x",
            f"<= {GOAL_RATIO}x",
            ratio <= GOAL_RATIO,
        ),
        Figure(
            "median latency, django-otp's verify_token (fresh static token) vs bare",
            f"{ms(otp)} vs {ms(plain)}",
            f"{otp_ratio:.2f}x",
        ),
        Figure(
            "latency the gate adds, as a share of what django-otp's check adds",
            f"{gate_adds * 1e3:.2f} ms vs {otp_adds * 1e3:.2f} ms",
            f"{share:.2f}",
            f"<= {GOAL_SHARE}",
            share <= GOAL_SHARE,
        ),
        Figure(
            "SQL queries per call, gated (approval known here) vs bare; django-otp's",
            f"{counts[GATED]} vs {counts[PLAIN]}; {counts[OTP]}",
            f"+{extra}; +{otp_extra}",
            f"<= +{GOAL_QUERIES}",
            extra <= GOAL_QUERIES,
        ),
        Figure(
            "SQL queries, gated call that reads the approval from HyperID vs bare",
            f"{len(inline)} vs {len(inline_plain)}",
            f"+{inline_extra}",
            f"<= +{GOAL_QUERIES_INLINE}",
            inline_extra <= GOAL_QUERIES_INLINE,
        ),
        Figure(
            "median latency, gated vs bare, on a view that writes one row (for scale)",
            f"{ms(medians[GATED_WRITE])} vs {ms(medians[PLAIN_WRITE])}",
            f"{median(writing_ratios):.2f}x",
        ),
    ]
    result.notes = [
        f"{rounds} round(s) of {calls} calls of each view, interleaved (the order of the "
        "three trivial views rotating call by call); each ratio is the median of the "
        "per-round ratios of median latencies: gated/bare "
        f"{span(ratios)}x, django-otp/bare {span(otp_ratios)}x, share of django-otp's "
        f"added cost {span(shares)}. The gate adds {gate_adds * 1e3:.2f} ms, django-otp's "
        f"check {otp_adds * 1e3:.2f} ms.",
        f"Queries of a gated call whose approval is known: {listing(sql[GATED])}; of the "
        f"django-otp call: {listing(sql[OTP])}; of the bare call: {listing(sql[PLAIN])}.",
        "A gated call that asks HyperID (a push sent, approved at a FakeHyperID on "
        f"loopback, then the call): {listing(inline)}.",
        "The view that writes updates the user's last_login: the least a view worth "
        f"gating does (per-round ratios {span(writing_ratios)}x).",
    ]
    result.data = {
        "plain_seconds": plain,
        "gated_seconds": gated,
        "otp_seconds": otp,
        "ratios": ratios,
        "ratio": ratio,
        "otp_ratios": otp_ratios,
        "otp_ratio": otp_ratio,
        "shares": shares,
        "share": share,
        "writing_ratios": writing_ratios,
        "queries_plain": counts[PLAIN],
        "queries_gated": counts[GATED],
        "queries_otp": counts[OTP],
        "queries_inline_plain": len(inline_plain),
        "queries_inline": len(inline),
        "sql_gated": sql[GATED],
        "sql_otp": sql[OTP],
        "sql_inline": inline,
    }
    return result
