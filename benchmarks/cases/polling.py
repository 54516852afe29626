"""Case 3: many clients polling ``request-detail`` of pending requests.

Fifty clients poll the detail endpoint of ten pending requests (five per request)
under gunicorn, each asking again the moment it has its answer: fifty polls in
flight at all times, where an approval page polls once every ``POLL_INTERVAL``.
Each round also runs ten clients, one per request, for comparison.
Every poll of a pending request may refresh it from HyperID, and the naive endpoint
would ask HyperID each time; the app coalesces them, so HyperID should be asked
about each request at most once per ``WATCHED_REFRESH_INTERVAL`` (0.5 s: a poll
means someone waits) however many clients poll: 2 calls a second, whether one
client or five wait on it. HyperID (the fake, in its own process) takes 50 ms to answer, so the
polls that do refresh are slow ones, and show in the p99.

The per-user poll throttle (120/min) is switched off: a refused poll would never
reach the refresh this case is about.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..harness import (
    BenchmarkError,
    CaseResult,
    FakeHyperIDProcess,
    Figure,
    Gunicorn,
    Options,
    choose_generator,
    hyperid_settings,
    link_hyperid,
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

NUMBER = 3
TITLE = "Polling pressure on request-detail"
MIN_REFRESH_INTERVAL = 2
#: A poll is someone waiting: the interval that applies (the default).
WATCHED_REFRESH_INTERVAL = 0.5
LATENCY = 0.05


@dataclass
class Series:
    """The rounds of one client count."""

    clients: int
    upstream: list[int] = field(default_factory=list)
    allowed: list[int] = field(default_factory=list)
    per_interval: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    coalescing: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)

    def within(self) -> bool:
        return all(u <= a for u, a in zip(self.upstream, self.allowed, strict=True))


def run(options: Options) -> CaseResult:
    require_postgresql("Case 3")
    generator = choose_generator(options.load_generator)
    requests_count = options.pick(10, 2)
    duration = options.pick(20.0, 1.0)
    rounds = options.rounds_for(3)
    # One client per request, then many: the upstream count must not follow the clients.
    series = [Series(requests_count), Series(options.pick(50, 4))]
    with FakeHyperIDProcess(options.workdir) as fake:
        hyperid_mfa = hyperid_settings(
            fake.url,
            MIN_REFRESH_INTERVAL=MIN_REFRESH_INTERVAL,
            WATCHED_REFRESH_INTERVAL=WATCHED_REFRESH_INTERVAL,
        )
        with project_settings(hyperid_mfa):
            reset_database()
            users = make_users(requests_count, "poll")
            owners = []
            for user in users:
                [transaction_id] = fake.start_transactions(link_hyperid(fake, user), 1)
                owners.append((user, transaction_id))
            rows = pending_requests(owners, "bench.poll")
            cookies = session_cookies(users)
        targets = [
            (f"/mfa/requests/{row.pk}/", cookie) for row, cookie in zip(rows, cookies, strict=True)
        ]
        fake.set_latency(LATENCY)
        with Gunicorn(options.workdir, hyperid_mfa, poll_throttle=False) as server:
            for round_number in range(rounds):
                for one in series if round_number % 2 == 0 else series[::-1]:
                    before = fake.calls("status-get")
                    load = run_load(
                        server.url,
                        targets,
                        connections=one.clients,
                        duration=duration,
                        generator=generator,
                        workdir=options.workdir,
                    )
                    upstream = fake.calls("status-get") - before
                    if load.non_2xx or load.errors:
                        raise BenchmarkError(
                            f"{load.non_2xx} poll(s) answered other than 2xx and "
                            f"{load.errors} failed: the figures would not be of the refresh path"
                        )
                    # In T seconds a request can be checked at the start of the window
                    # and then once per interval: floor(T / interval) + 1 times at most.
                    windows = math.floor(load.seconds / WATCHED_REFRESH_INTERVAL) + 1
                    one.upstream.append(upstream)
                    one.allowed.append(requests_count * windows)
                    one.per_interval.append(
                        upstream / (requests_count * load.seconds / WATCHED_REFRESH_INTERVAL)
                    )
                    one.rates.append(load.rate)
                    one.coalescing.append(load.answers / max(upstream, 1))
                    one.p50.append(load.p50_ms)
                    one.p99.append(load.p99_ms)
        with project_settings(hyperid_mfa):
            reset_database()
    few, many = series
    result = CaseResult(NUMBER, TITLE)
    result.figures = [
        Figure(
            f"upstream status-get calls per request per {WATCHED_REFRESH_INTERVAL} s, "
            f"{many.clients} clients",
            f"{median(many.upstream):.0f} calls for {requests_count} requests in "
            f"{duration:g} s (at most {median(many.allowed):.0f})",
            f"{median(many.per_interval):.2f}",
            "<= 1 (the floor)",
            many.within() and few.within(),
        ),
        Figure(
            f"the same with {few.clients} clients (one per request)",
            f"{median(few.upstream):.0f} calls",
            f"{median(few.per_interval):.2f}",
        ),
        Figure(
            f"client polls per upstream call, {many.clients} clients (naive endpoint: 1)",
            f"{median(many.rates):,.0f} polls/s",
            f"{median(many.coalescing):,.0f}x",
        ),
        Figure(
            f"poll latency p50 / p99, {many.clients} clients",
            f"{median(many.p50):.1f} ms / {median(many.p99):.1f} ms",
            goal="reported",
        ),
    ]
    result.notes = [
        f"{rounds} round(s) of {duration:g} s with {few.clients} and with {many.clients} "
        f"closed-loop clients ({generator}), over {requests_count} pending requests of "
        f"{requests_count} users; gunicorn, 2 sync workers; HyperID answers in "
        f"{LATENCY * 1000:.0f} ms. Upstream calls per round: {span(many.upstream, '{:.0f}')} "
        f"({many.clients} clients), {span(few.upstream, '{:.0f}')} ({few.clients}); "
        f"polls/s {span(many.rates, '{:.0f}')}; p99 {span(many.p99, '{:.1f}')} ms.",
        "The goal holds when no round asked HyperID about a request more than once at the "
        "start of its window and once per interval after that. With every client asking "
        "again at once, a poll's latency is mostly its wait for one of the two workers "
        f"({many.clients} polls in flight / throughput); the slowest include a refresh.",
    ]
    result.data = {
        "upstream": many.upstream + few.upstream,
        "allowed": many.allowed + few.allowed,
        "per_interval": many.per_interval,
        "polls_per_second": many.rates,
        "p50_ms": many.p50,
        "p99_ms": many.p99,
        "generator": generator,
    }
    return result
