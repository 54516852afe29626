"""The soak: virtual users run the whole flow against three servers while faults come
and go, and nothing is lost.

    .venv/bin/python benchmarks/run.py soak                      # 200 users, 10 minutes
    .venv/bin/python benchmarks/run.py soak --users 40 --seconds 100   # CI's short one

Each virtual user (a thread) loops: it submits the gated action (``bench/act/``, an
order of its own) to one of the servers, gets ``mfa_pending`` and the push's
transaction id, waits as a person would, approves (4 in 5) or denies the push on the
simulator, resubmits until the action runs or the denial is told, then pauses. A
503 is retried after its ``Retry-After``. Two ``hyperid_mfa_poll --loop`` processes
follow the pending requests meanwhile, as in the reference deployment.

The cluster (``benchmarks/cluster.py``) is three gunicorn servers of the benchmark
project, the database of ``--database``, and a Redis of the soak's own
(``redis-server`` on a free port, so that it can be restarted; never the shared one).
The faults, at fixed shares of the run (``SCHEDULE``):

- HyperID failing: 20% of its calls answer HTTP 502 (the client retries status-get;
  a start it never retries);
- HyperID slow: a third of its calls wait 1.5 s more;
- Redis restarted: stopped, 4 s gone, started again empty;
- PostgreSQL connections killed: ``pg_terminate_backend`` on every other session
  of the database, three times a second apart.

It checks, and exits non-zero when one fails: every approved order ran exactly once,
none ran unapproved (denied, or never answered), no unexpected answer, every 503
carried ``Retry-After``, no 503 outside the fault windows (plus a grace period), and
each server's memory grew at most 5% from the end of the warm-up to the end. An HTTP
500 fails the run when it passed through the app's code (the servers' logs keep
each traceback) or came outside a fault window; one raised by Django's own
middleware on a database connection killed in the middle of a request, before any
view ran, is counted and reported apart: no app can answer it (a site that wants a
503 there needs a middleware of its own above the session's). It reports the gated
request's p50/p99 outside the fault windows.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from .cluster import ACT_PATH, Cluster, SiteUser
from .harness import BenchmarkError, Child, child_environment, free_port, percentile

#: (name, start, end) as shares of the run; the RSS baseline is taken at WARM_UP.
WARM_UP = 0.12
SCHEDULE: tuple[tuple[str, float, float], ...] = (
    ("hyperid-errors", 0.15, 0.27),
    ("hyperid-latency", 0.35, 0.47),
    ("redis-restart", 0.55, 0.57),
    ("postgres-kill", 0.70, 0.71),
)
#: Seconds after a fault window still counted as its aftermath (a request that began
#: inside it, a connection found dead on its next use, a 503's Retry-After).
GRACE = 8.0
#: Share of the pushes the phones approve; the rest are denied.
APPROVE_SHARE = 0.8
#: Memory growth allowed from the warm-up to the end, per server.
RSS_GROWTH = 0.05
#: A flow that has not ended after this many seconds is given up (and reported).
FLOW_DEADLINE = 120.0


@dataclass
class Tally:
    """What the virtual users saw; shared by their threads (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    approved: set[str] = field(default_factory=set)
    denied: set[str] = field(default_factory=set)
    unanswered: set[str] = field(default_factory=set)
    ran: Counter[str] = field(default_factory=Counter)
    given_up: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    #: (time since the start, seconds taken) of each gated request answered.
    latencies: list[tuple[float, float]] = field(default_factory=list)
    #: (time since the start, what) of each 503 and of each transport error.
    unavailable: list[tuple[float, str]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    #: When each HTTP 500 was answered (since the start).
    server_errors: list[float] = field(default_factory=list)
    #: What was last answered to each flow that ran out of time.
    late: list[str] = field(default_factory=list)
    flows: int = 0


class Soak:
    def __init__(self, cluster: Cluster, users: list[SiteUser], seconds: float, seed: int):
        self.cluster = cluster
        self.users = users
        self.seconds = seconds
        self.tally = Tally()
        self.began = 0.0
        self.stop = threading.Event()
        self.seed = seed

    def now(self) -> float:
        return time.monotonic() - self.began

    # --- one virtual user ----------------------------------------------------------------

    def user_loop(self, number: int, user: SiteUser) -> None:
        # Replayable draws of a simulated person, not secrets.
        rng = random.Random(self.seed * 1000 + number)  # noqa: S311
        with requests.Session() as http:
            http.trust_env = False
            # Users start over the first tenth of the run, not all at once.
            if self.stop.wait(rng.uniform(0, self.seconds / 10)):
                return
            while not self.stop.is_set():
                self.flow(http, user, rng)
                self.stop.wait(rng.uniform(4, 12))

    def call(
        self,
        http: requests.Session,
        user: SiteUser,
        path: str,
        order: str | None,
        rng: random.Random,
    ) -> tuple[str, Any, float]:
        """POST the action (``order`` given) or GET a status URL once, on a server
        drawn at random; the answer's code (``ran`` for the action's 200, ``ok`` for
        another 200), its JSON body, and the seconds to wait before asking again."""
        url = rng.choice(self.cluster.urls) + path
        headers = {"Cookie": user.cookie, "Accept": "application/json"}
        began = time.monotonic()
        try:
            if order is None:
                answer = http.get(url, headers=headers, timeout=30)
            else:
                answer = http.post(url, data={"order": order}, headers=headers, timeout=30)
        except requests.RequestException as err:
            with self.tally.lock:
                self.tally.statuses["transport error"] += 1
                self.tally.unavailable.append((self.now(), f"transport: {type(err).__name__}"))
            return "transport", None, 1.0
        took = time.monotonic() - began
        body = None
        code = "unreadable"
        if answer.status_code == 200:
            code = "ok" if order is None else "ran"
        if answer.headers.get("Content-Type", "").startswith("application/json"):
            with contextlib.suppress(ValueError):
                body = answer.json()
                if answer.status_code != 200 and isinstance(body, dict):
                    code = str(body.get("code", "unreadable"))
        retry_after = 1.0
        with self.tally.lock:
            kind = "action" if order is not None else "status"
            self.tally.statuses[f"{kind} {answer.status_code} {code}"] += 1
            if order is not None:
                self.tally.latencies.append((self.now(), took))
            if answer.status_code in (429, 503):
                header = answer.headers.get("Retry-After", "")
                if answer.status_code == 503:
                    self.tally.unavailable.append((self.now(), f"503 Retry-After={header!r}"))
                if not header.isdigit():
                    self.tally.unexpected.append(
                        f"{answer.status_code} without Retry-After: {answer.text[:200]}"
                    )
                else:
                    retry_after = float(header)
            elif answer.status_code == 500:
                self.tally.server_errors.append(self.now())
            elif code not in ("ran", "ok", "mfa_pending"):
                self.tally.unexpected.append(f"{answer.status_code} {code}: {answer.text[:200]}")
        return code, body, retry_after

    def flow(self, http: requests.Session, user: SiteUser, rng: random.Random) -> None:
        """Submit, answer on the phone, follow the status as the approval page does,
        and on approval submit again until the action runs."""
        order = uuid.uuid4().hex
        deadline = time.monotonic() + FLOW_DEADLINE
        pending = self._until(http, user, ACT_PATH, order, rng, deadline, {"mfa_pending"})
        if pending is None:
            with self.tally.lock:
                self.tally.unanswered.add(order)
            return
        transaction_id = int(pending["mfa_request"]["transaction_id"])
        # It names the server that answered; any server answers it.
        status_path = urlsplit(str(pending["mfa_request"]["status_url"])).path
        # A person reads the code and answers.
        if self.stop.wait(rng.uniform(0.5, 2.5)):
            with self.tally.lock:
                self.tally.unanswered.add(order)
            return
        decision = "approve" if rng.random() < APPROVE_SHARE else "deny"
        if not self._answer(transaction_id, decision):
            with self.tally.lock:
                self.tally.unexpected.append(f"push {transaction_id} could not be answered")
            return
        with self.tally.lock:
            (self.tally.approved if decision == "approve" else self.tally.denied).add(order)
        # The approval page polls the request until it is decided.
        while time.monotonic() < deadline:
            status = self._until(http, user, status_path, None, rng, deadline, {"ok"})
            if status is None:
                break
            if status.get("state") != "pending":
                break
            time.sleep(1.5)
        else:
            with self.tally.lock:
                self.tally.late.append("status: still pending")
            status = None
        if status is None:
            with self.tally.lock:
                self.tally.given_up.add(order)
            return
        wanted = "approved" if decision == "approve" else "denied"
        if status.get("state") != wanted:
            with self.tally.lock:
                self.tally.unexpected.append(f"order {order}: {status.get('state')}, not {wanted}")
            return
        if decision == "deny":
            with self.tally.lock:
                self.tally.flows += 1
            return
        # Approved: the page submits the action again.
        answer = self._until(http, user, ACT_PATH, order, rng, deadline, {"ran", "mfa_pending"})
        with self.tally.lock:
            if answer is None:
                self.tally.given_up.add(order)
            elif answer == {"code": "ran"}:
                self.tally.ran[order] += 1
                self.tally.flows += 1
            else:
                # A new push: the approval was not there to consume.
                self.tally.unexpected.append(f"order {order}: approved, yet a new push")

    def _until(
        self,
        http: requests.Session,
        user: SiteUser,
        path: str,
        order: str | None,
        rng: random.Random,
        deadline: float,
        wanted: set[str],
    ) -> dict[str, Any] | None:
        """Ask until the answer's code is one of ``wanted`` (after a 503, when its
        Retry-After says); its body (``{"code": "ran"}`` for the action), or None when
        the deadline passed or something else was answered."""
        code = "nothing"
        while time.monotonic() < deadline:
            code, body, retry_after = self.call(http, user, path, order, rng)
            if code in wanted:
                return {"code": "ran"} if code == "ran" else dict(body or {})
            if code not in ("transport", "mfa_unavailable", "mfa_rate_limited"):
                return None
            # Unavailable, or a push refused for now (the cooldown after a denial):
            # as told by Retry-After.
            time.sleep(min(retry_after, 5.0) if code != "mfa_rate_limited" else retry_after)
        with self.tally.lock:
            self.tally.late.append(f"{path if order is None else 'action'}: last {code}")
        return None

    def _answer(self, transaction_id: int, decision: str) -> bool:
        for _attempt in range(5):
            try:
                return self.cluster.simulator.answer(transaction_id, decision)
            except (requests.RequestException, BenchmarkError):
                time.sleep(0.5)
        return False


class Faults:
    """The fault schedule's actions."""

    def __init__(self, cluster: Cluster, redis: RedisServer) -> None:
        self.cluster = cluster
        self.redis = redis

    def begin(self, name: str) -> None:
        if name == "hyperid-errors":
            self.cluster.simulator.inject("http_502", share=0.2)
        elif name == "hyperid-latency":
            self.cluster.simulator.inject("delay", seconds=1.5, share=0.33)
        elif name == "redis-restart":
            self.redis.stop()
            time.sleep(4)
            self.redis.start()
        elif name == "postgres-kill":
            for _ in range(3):
                kill_connections()
                time.sleep(1)

    def end(self, name: str) -> None:
        if name in ("hyperid-errors", "hyperid-latency"):
            self.cluster.simulator.clear_faults()


def kill_connections() -> int:
    """``pg_terminate_backend`` on every other session of this database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


class RedisServer:
    """A ``redis-server`` of the soak's own on a free port, which it may restart."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise BenchmarkError("the soak needs redis-server (apt-get install redis-server)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.child: Child | None = None
        self.start()

    def start(self) -> None:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]
        self.child = Child(f"redis-{time.monotonic_ns()}", args, child_environment(), self.workdir)
        for _ in range(100):
            ping = subprocess.run(  # noqa: S603 - fixed arguments
                ["redis-cli", "-p", str(self.port), "ping"],  # noqa: S607
                capture_output=True,
                text=True,
                check=False,
            )
            if ping.stdout.strip() == "PONG":
                return
            time.sleep(0.1)
        raise BenchmarkError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None


@dataclass
class Outcome:
    lines: list[str]
    failures: list[str]


def in_windows(moment: float, windows: list[tuple[float, float]]) -> bool:
    return any(start <= moment <= end + GRACE for start, end in windows)


def run(
    workdir: Path, *, users: int, seconds: float, seed: int, log: Callable[[str], None]
) -> Outcome:
    redis = RedisServer(workdir)
    try:
        with Cluster(
            workdir,
            redis.url,
            hyperid={"START_RATE_LIMIT": "1000/10m", "MIN_REFRESH_INTERVAL": 2},
            simulator_options=("--seed", str(seed), "--transaction-ttl", "600"),
        ) as cluster:
            return _soak(cluster, redis, users=users, seconds=seconds, seed=seed, log=log)
    finally:
        redis.stop()


def _soak(
    cluster: Cluster,
    redis: RedisServer,
    *,
    users: int,
    seconds: float,
    seed: int,
    log: Callable[[str], None],
) -> Outcome:
    site_users = cluster.users(users, f"soak{seed}")
    pollers = [
        cluster.poller(f"poller-{n}", "--loop", "--interval", "2", "--concurrency", "4")
        for n in (1, 2)
    ]
    soak = Soak(cluster, site_users, seconds, seed)
    faults = Faults(cluster, redis)
    windows: list[tuple[float, float]] = []
    soak.began = time.monotonic()
    threads = [
        threading.Thread(target=soak.user_loop, args=(n, user), daemon=True)
        for n, user in enumerate(site_users)
    ]
    for thread in threads:
        thread.start()
    rss_start: list[int] = []
    try:
        time.sleep(max(0.0, WARM_UP * seconds - soak.now()))
        rss_start = cluster.rss()
        log(f"  {soak.now():6.1f}s warm-up over; RSS {mib(rss_start)}")
        for name, start, end in SCHEDULE:
            time.sleep(max(0.0, start * seconds - soak.now()))
            began = soak.now()
            log(f"  {began:6.1f}s {name} begins")
            faults.begin(name)
            time.sleep(max(0.0, end * seconds - soak.now()))
            faults.end(name)
            windows.append((began, soak.now()))
            log(f"  {soak.now():6.1f}s {name} over")
        time.sleep(max(0.0, seconds - soak.now()))
        rss_end = cluster.rss()
    finally:
        soak.stop.set()
        for thread in threads:
            thread.join(timeout=FLOW_DEADLINE)
        for poller in pollers:
            poller.stop()
    return judge(soak, cluster, windows, rss_start, rss_end)


def server_errors(cluster: Cluster) -> tuple[int, int]:
    """The servers' 500s (Django's ``Internal Server Error`` lines and the tracebacks
    after them): how many passed through the app's code, and how many did not (the
    session or user lookup of Django's middleware meeting a connection killed in the
    middle of the request, before any view: no app can answer those)."""
    in_app = in_django = 0
    for log in cluster.workdir.glob("server-*.log"):
        blocks = log.read_text(errors="replace").split("Internal Server Error:")[1:]
        for block in blocks:
            frames = [line for line in block.splitlines() if line.startswith('  File "')]
            if any(f"{os.sep}hyperid_mfa{os.sep}" in frame for frame in frames):
                in_app += 1
            else:
                in_django += 1
    return in_app, in_django


def mib(values: list[int]) -> str:
    return ", ".join(f"{value / 2**20:.0f} MiB" for value in values)


def judge(
    soak: Soak,
    cluster: Cluster,
    windows: list[tuple[float, float]],
    rss_start: list[int],
    rss_end: list[int],
) -> Outcome:
    tally = soak.tally
    runs = cluster.actions()
    failures: list[str] = []
    approved = tally.approved - tally.given_up
    not_once = {order: runs[order] for order in approved if runs[order] != 1}
    if not_once:
        failures.append(f"{len(not_once)} approved order(s) did not run exactly once: {not_once}")
    unapproved = {
        order: count for order, count in runs.items() if order not in tally.approved and count
    }
    if unapproved:
        failures.append(f"{len(unapproved)} order(s) ran without approval: {unapproved}")
    if tally.given_up:
        failures.append(
            f"{len(tally.given_up)} flow(s) given up after {FLOW_DEADLINE:g}s: "
            f"{Counter(tally.late).most_common(5)}"
        )
    if tally.unexpected:
        kinds = Counter(what[:120] for what in tally.unexpected)
        failures.append(f"{len(tally.unexpected)} unexpected answer(s): {kinds.most_common(8)}")
    in_app, in_django = server_errors(cluster)
    if in_app:
        failures.append(f"{in_app} HTTP 500(s) raised through the app's code")
    stray = [moment for moment in tally.server_errors if not in_windows(moment, windows)]
    if stray or len(tally.server_errors) != in_app + in_django:
        failures.append(
            f"{len(tally.server_errors)} HTTP 500(s), {len(stray)} outside the fault windows"
        )
    outside = [what for moment, what in tally.unavailable if not in_windows(moment, windows)]
    if outside:
        failures.append(f"{len(outside)} 503/transport error(s) outside the fault windows")
    quiet = [took for moment, took in tally.latencies if not in_windows(moment, windows)]
    growth = [end / start - 1 for start, end in zip(rss_start, rss_end, strict=True)]
    if any(share > RSS_GROWTH for share in growth):
        failures.append(f"RSS grew more than {RSS_GROWTH:.0%}: {growth}")
    fault_503 = sum(1 for _, what in tally.unavailable if what.startswith("503"))
    lines = [
        f"virtual users: {len(soak.users)}; run: {soak.seconds:g} s; flows finished: {tally.flows}",
        f"orders approved: {len(tally.approved)}, denied: {len(tally.denied)}, "
        f"unanswered at the end: {len(tally.unanswered)}; actions run: {sum(runs.values())} "
        f"(approved orders run exactly once: {len(approved) - len(not_once)} of {len(approved)})",
        "answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(tally.statuses.items())),
        f"503 answers (all in fault windows + {GRACE:g} s: {not outside}): {fault_503}",
        f"HTTP 500: {len(tally.server_errors)} ({in_app} through the app's code, {in_django} in "
        "Django's own middleware before any view, on a connection killed mid-request)",
        f"gated request outside the fault windows: {len(quiet)} answers, "
        f"p50 {percentile(quiet, 50) * 1000:.0f} ms, p99 {percentile(quiet, 99) * 1000:.0f} ms"
        if quiet
        else "no answer outside the fault windows",
        f"RSS per server after warm-up: {mib(rss_start)}; at the end: {mib(rss_end)}; "
        f"growth: {', '.join(f'{share:+.1%}' for share in growth)}",
        "fault windows (s): "
        + ", ".join(
            f"{name} {start:.0f}-{end:.0f}"
            for (name, _, _), (start, end) in zip(SCHEDULE, windows, strict=False)
        ),
    ]
    if quiet:
        lines.append(f"mean gated request outside windows: {statistics.mean(quiet) * 1000:.0f} ms")
    return Outcome(lines, failures)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--users", type=int, default=200, help="virtual users (default 200)")
    parser.add_argument(
        "--seconds", type=float, default=600.0, help="length of the run (default 600)"
    )
    parser.add_argument("--seed", type=int, default=21, help="seed of the users' choices")
    parser.add_argument("--database", default=None, help="PostgreSQL URL (as benchmarks/run.py)")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the servers' logs and the action log here (default: a temporary directory)",
    )
    args = parser.parse_args(argv)
    import tempfile

    from benchmarks import run as runner

    from .harness import load_average, reset_database

    runner.prepare_database(args.database or runner.default_database())
    reset_database()
    print(
        f"soak: load average {load_average()}; {args.users} users, {args.seconds:g} s", flush=True
    )
    with contextlib.ExitStack() as stack:
        workdir = args.workdir
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hm-soak-")))
        workdir.mkdir(parents=True, exist_ok=True)
        outcome = run(
            workdir,
            users=args.users,
            seconds=args.seconds,
            seed=args.seed,
            log=lambda line: print(line, flush=True),
        )
    print("\n".join(outcome.lines))
    print(f"load average at the end: {load_average()}")
    for failure in outcome.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if outcome.failures else 0
