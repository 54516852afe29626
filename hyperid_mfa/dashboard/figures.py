"""The dashboard's numbers, computed from the database for the last 24 hours or 7 days.

Hours are UTC hours; a period is its last 24 (or 168) of them, the current one
included, so that the charts' bars and the totals count the same rows.

- **Pushes per hour, by outcome**: *sent* is the requests created in the hour;
  *limited*, *cooldown* and *failed* come from the hourly counts of pushes not
  sent (:class:`~hyperid_mfa.models.UnsentPush`).
- **Outcomes**: what became of the pushes sent in the period (approved, consumed or
  not; denied; expired; canceled; failed; still pending), and the approval, denial
  and expiry rates among them.
- **Time to decide**: from the push to the approval or denial learnt, median and
  90th percentile (nearest rank) of the requests decided, counted in buckets and
  rounded down to the bucket's start: to the tenth of a second below 10 s, to the
  second below a minute, to 5 s below 5 minutes (``DecisionBucket.EDGES``).
- **HyperID errors per hour, by result** (:class:`~hyperid_mfa.models.FailedCall`).
- **Users** with the most denials, and with the most pushes refused by the limit.

A finished hour (over, and none of its requests pending) never changes: its figures
are kept in Django's cache for the next eight days, so that a page over a large
table reads one row of MFARequest per request of the current hour, not per request
of the week. The other hours are counted at each view, from the index on
``created_at``.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connections, router
from django.db.models import Aggregate, Case, Count, Func, IntegerField, QuerySet, Sum, When
from django.db.models.functions import TruncHour

from ..models import (
    STATE_FILTERS,
    CompleteResultChoices,
    FailedCall,
    MFARequest,
    PushOutcome,
    RequestStatus,
    State,
    UnsentPush,
    database_now,
)

#: The periods a dashboard covers: name -> hours.
PERIODS = {"24h": 24, "7d": 168}
DEFAULT_PERIOD = "24h"
#: How many users each list shows.
TOP_USERS = 10
HOUR = timedelta(hours=1)
#: How long a finished hour's figures stay in the cache: past the longest period.
CACHE_SECONDS = 8 * 24 * 3600
CACHE_PREFIX = "hyperid_mfa:dashboard:v1"

#: What became of a push sent, in the order the dashboard shows them.
OUTCOMES = (
    State.APPROVED,
    State.DENIED,
    State.EXPIRED,
    State.CANCELED,
    State.FAILED,
    State.PENDING,
)
#: The outcomes of pushes, in the charts' stacking order.
PUSH_SERIES = tuple(PushOutcome.values)


def _bucket_edges() -> tuple[int, ...]:
    """Where the buckets of the time to decide start, in tenths of a second: every
    tenth up to 10 s, every second up to a minute, every 5 s up to 5 minutes, every 30
    s up to half an hour, every 5 minutes up to an hour, then one bucket."""
    steps = ((0, 100, 1), (100, 600, 10), (600, 3000, 50), (3000, 18000, 300), (18000, 36001, 3000))
    return tuple(edge for low, high, step in steps for edge in range(low, high, step))


#: Where the buckets of the time to decide start, in tenths of a second.
BUCKET_EDGES = _bucket_edges()


@dataclass(frozen=True)
class HourFigures:
    """One UTC hour of MFARequest: requests created, what became of them, and how long
    the decided ones took (requests in each bucket of ``DecisionBucket.EDGES``)."""

    outcomes: dict[str, int] = field(default_factory=dict)
    decided: tuple[int, ...] = field(default_factory=lambda: (0,) * len(BUCKET_EDGES))

    def decided_by_start(self) -> dict[int, int]:
        """The buckets with requests in them: start (tenths of a second) -> requests."""
        return {BUCKET_EDGES[i]: n for i, n in enumerate(self.decided) if n}

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())

    @property
    def finished(self) -> bool:
        return not self.outcomes.get(State.PENDING)

    def as_cached(self) -> dict[str, Any]:
        return {"outcomes": self.outcomes, "decided": self.decided}

    @classmethod
    def from_cached(cls, value: Any) -> HourFigures | None:
        """What :meth:`as_cached` wrote (under a key of this version), or None."""
        try:
            outcomes, decided = value["outcomes"], value["decided"]
        except (TypeError, KeyError):
            return None
        if not isinstance(outcomes, dict) or not isinstance(decided, tuple):
            return None
        if len(decided) != len(DecisionBucket.EDGES):
            return None
        return cls(outcomes, decided)


@dataclass(frozen=True)
class UserCount:
    user_id: Any
    username: str
    count: int


@dataclass(frozen=True)
class Dashboard:
    period: str
    now: datetime
    #: The start of each hour of the period, oldest first (UTC).
    hours: list[datetime]
    #: Push outcome -> pushes in each hour.
    pushes: dict[str, list[int]]
    #: Outcome of the pushes sent in the period -> how many.
    outcomes: dict[str, int]
    #: Decided requests (approved or denied) and their time to decide, in seconds.
    decided: int
    median_seconds: float | None
    p90_seconds: float | None
    #: HyperID result (or failure) -> failed calls in each hour.
    errors: dict[str, list[int]]
    #: (call, result) -> failed calls in the period, most first.
    errors_by_call: list[tuple[str, str, int]]
    top_denials: list[UserCount]
    top_limited: list[UserCount]

    @property
    def start(self) -> datetime:
        return self.hours[0]

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())

    def rate(self, outcome: str) -> float | None:
        """The share of the pushes sent in the period with this outcome (0..1)."""
        return self.outcomes.get(outcome, 0) / self.sent if self.sent else None


# --- computing -----------------------------------------------------------------------


def compute(period: str = DEFAULT_PERIOD, *, now: datetime | None = None) -> Dashboard:
    """The dashboard of ``period`` (a key of PERIODS) ending now (the database's clock)."""
    using = router.db_for_read(MFARequest)
    now = now or database_now(using)
    last = _hour_of(now)
    hours = [last - HOUR * back for back in reversed(range(PERIODS[period]))]
    start = hours[0]
    figures = hour_figures(hours, now, using)
    outcomes: Counter[str] = Counter()
    decided = [0] * len(DecisionBucket.EDGES)
    for hour in hours:
        outcomes.update(figures[hour].outcomes)
        decided = list(map(operator.add, decided, figures[hour].decided))
    pushes = {series: [0] * len(hours) for series in PUSH_SERIES}
    pushes[PushOutcome.SENT] = [figures[hour].sent for hour in hours]
    index = {hour: i for i, hour in enumerate(hours)}
    unsent = (
        UnsentPush.objects.using(using)
        .filter(hour__gte=start)
        .values_list("hour", "outcome")
        .annotate(n=Sum("count"))
    )
    for hour, outcome, n in unsent:
        if _utc(hour) in index and outcome in pushes:
            pushes[outcome][index[_utc(hour)]] += n
    errors, errors_by_call = _errors(using, start, index)
    return Dashboard(
        period=period,
        now=now,
        hours=hours,
        pushes=pushes,
        outcomes={outcome: outcomes.get(outcome, 0) for outcome in OUTCOMES},
        decided=sum(decided),
        median_seconds=percentile(decided, 0.5),
        p90_seconds=percentile(decided, 0.9),
        errors=errors,
        errors_by_call=errors_by_call,
        top_denials=_top_denials(using, start),
        top_limited=_top_limited(using, start),
    )


def hour_figures(
    hours: Sequence[datetime], now: datetime, using: str
) -> dict[datetime, HourFigures]:
    """Each hour's figures: from the cache where the hour is finished, else counted."""
    keys = {hour: _cache_key(using, hour) for hour in hours}
    cached = cache.get_many(list(keys.values()))
    figures: dict[datetime, HourFigures] = {}
    for hour, key in keys.items():
        found = HourFigures.from_cached(cached[key]) if key in cached else None
        if found is not None:
            figures[hour] = found
    missing = [hour for hour in hours if hour not in figures]
    if not missing:
        return figures
    counted = count_hours(missing[0], using)
    final = {}
    for hour in missing:
        figures[hour] = counted.get(hour, HourFigures())
        if hour + HOUR <= now and figures[hour].finished:
            final[keys[hour]] = figures[hour].as_cached()
    if final:
        cache.set_many(final, timeout=CACHE_SECONDS)
    return figures


def count_hours(since: datetime, using: str) -> dict[datetime, HourFigures]:
    """Count the requests created from ``since`` on, by UTC hour and outcome, with the
    times to decide by bucket: one query over the index on ``created_at``."""
    rows = MFARequest.objects.using(using).filter(created_at__gte=since)
    vendor = connections[using].vendor
    outcomes: dict[datetime, Counter[str]] = defaultdict(Counter)
    decided: dict[datetime, list[int]] = defaultdict(lambda: [0] * len(DecisionBucket.EDGES))
    counted: Iterable[tuple[datetime, int, int | None, int | None, int]]
    in_sql = vendor in DecisionBucket.VENDORS
    numbered = in_sql and vendor == "postgresql"  # buckets by number, else tenths
    if in_sql:
        bucket = Case(
            When(status=RequestStatus.COMPLETED, then=DecisionBucket("completed_at", "created_at")),
            default=None,
            output_field=IntegerField(),
        )
        counted = (
            rows.annotate(hour=TruncHour("created_at", tzinfo=timezone.utc), bucket=bucket)
            .values_list("hour", "status", "complete_result", "bucket")
            .annotate(n=Count("*"))
            .order_by()
        )
    else:
        counted = (
            (
                _hour_of(created),
                status,
                complete_result,
                _tenths(completed_at - created)
                if status == RequestStatus.COMPLETED and completed_at is not None
                else None,
                1,
            )
            for created, status, complete_result, completed_at in rows.values_list(
                "created_at", "status", "complete_result", "completed_at"
            )
        )
    for when, status, complete_result, value, n in counted:
        hour = _utc(when)
        outcomes[hour][_outcome(status, complete_result)] += n
        if value is not None:
            decided[hour][DecisionBucket.index(value, numbered=numbered)] += n
    return {when: HourFigures(dict(outcomes[when]), tuple(decided[when])) for when in outcomes}


class DecisionBucket(Func):
    """The bucket of the time from the second expression to the first.

    PostgreSQL answers the bucket's number (``width_bucket`` over the edges, one
    evaluation per row); SQLite the tenths of a second, bucketed here. Other
    databases are counted in Python. Durations are floating point in both: a hair's
    breadth (0.1 ms) under an edge counts as the edge, so 12.3 s is never 12.29999 s.
    """

    VENDORS = ("postgresql", "sqlite")
    EDGES = BUCKET_EDGES
    output_field = IntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = self.as_sql(
            compiler,
            connection,
            template="DATE_PART('epoch', %(expressions)s) + 0.0001",
            arg_joiner=" - ",
            **extra,
        )
        return f"width_bucket({sql}, %s::float8[])", (*params, [e / 10 for e in self.EDGES])

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # julianday() keeps about 50 µs of precision; CAST rounds toward zero, which is
        # down for the durations that count (a negative one, from a clock step, is 0).
        return self.as_sql(
            compiler,
            connection,
            template="CAST((julianday(%(expressions)s)) * 864000 + 0.001 AS INTEGER)",
            arg_joiner=") - julianday(",
            **extra,
        )

    @classmethod
    def index(cls, value: int, *, numbered: bool) -> int:
        """The index in EDGES of the bucket of ``value``: a bucket's number
        (PostgreSQL's answer) when ``numbered``, else tenths of a second."""
        if numbered:
            return min(max(int(value), 1), len(cls.EDGES)) - 1
        return max(bisect.bisect_right(cls.EDGES, int(value)), 1) - 1


_OUTCOME_OF_STATUS: dict[int, str] = {
    RequestStatus.PENDING: State.PENDING,
    RequestStatus.EXPIRED: State.EXPIRED,
    RequestStatus.CANCELED: State.CANCELED,
}


def _outcome(status: int, complete_result: int | None) -> str:
    """A request's outcome as the dashboard counts it: its state, consumed or not."""
    if status == RequestStatus.COMPLETED:
        return State.DENIED if complete_result == CompleteResultChoices.DENIED else State.APPROVED
    return _OUTCOME_OF_STATUS.get(status, State.FAILED)


def _errors(
    using: str, start: datetime, index: dict[datetime, int]
) -> tuple[dict[str, list[int]], list[tuple[str, str, int]]]:
    rows = (
        FailedCall.objects.using(using)
        .filter(hour__gte=start)
        .values_list("hour", "call", "result")
        .annotate(n=Sum("count"))
        .order_by()
    )
    per_hour: dict[str, list[int]] = {}
    by_call: Counter[tuple[str, str]] = Counter()
    for hour, call, result, n in rows:
        if _utc(hour) not in index:
            continue
        per_hour.setdefault(result, [0] * len(index))[index[_utc(hour)]] += n
        by_call[(call, result)] += n
    ordered = dict(sorted(per_hour.items(), key=lambda item: (-sum(item[1]), item[0])))
    return ordered, [(call, result, n) for (call, result), n in _most_first(by_call)]


def _most_first(counts: Counter[Any]) -> list[tuple[Any, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _top_denials(using: str, start: datetime) -> list[UserCount]:
    denied = MFARequest.objects.using(using).filter(STATE_FILTERS[State.DENIED])
    return _top_users(denied.filter(created_at__gte=start), Count("*"))


def _top_limited(using: str, start: datetime) -> list[UserCount]:
    limited = UnsentPush.objects.using(using).filter(outcome=PushOutcome.LIMITED)
    return _top_users(limited.filter(hour__gte=start), Sum("count"))


def _top_users(rows: QuerySet[Any], total: Aggregate) -> list[UserCount]:
    top = rows.values_list("user_id").annotate(n=total).order_by("-n", "user_id")[:TOP_USERS]
    return _with_names(list(top))


def _with_names(rows: list[tuple[Any, int]]) -> list[UserCount]:
    users = get_user_model()._default_manager.in_bulk([user_id for user_id, _n in rows])
    return [
        UserCount(user_id, users[user_id].get_username() if user_id in users else "?", n)
        for user_id, n in rows
    ]


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of requests counted in the buckets
    of ``DecisionBucket.EDGES``, in seconds (the bucket's start); None when there is
    none."""
    total = sum(histogram)
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            return DecisionBucket.EDGES[index] / 10
    return None  # unreachable: the counts add up to the total


def histogram(by_start: dict[int, int]) -> tuple[int, ...]:
    """Counts in the buckets that start at these tenths of a second (each an edge)."""
    return tuple(by_start.get(edge, 0) for edge in DecisionBucket.EDGES)


# --- hours --------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc) if value.tzinfo else value


def _hour_of(value: datetime) -> datetime:
    return _utc(value).replace(minute=0, second=0, microsecond=0)


def _tenths(duration: timedelta) -> int:
    return int(duration // timedelta(milliseconds=100))


def _cache_key(using: str, hour: datetime) -> str:
    return f"{CACHE_PREFIX}:{using}:{hour:%Y%m%d%H}"


__all__ = [
    "DEFAULT_PERIOD",
    "OUTCOMES",
    "PERIODS",
    "PUSH_SERIES",
    "Dashboard",
    "HourFigures",
    "UserCount",
    "compute",
    "count_hours",
    "hour_figures",
    "percentile",
]
