"""What the benchmark cases share: options, results, statistics, the processes they
start (a FakeHyperID server, gunicorn, load generators) and the rows they create.

Every case is a function ``run(options) -> CaseResult`` in ``benchmarks.cases``. It
expects Django to be set up on a migrated database (``benchmarks/run.py`` does that
on its own settings; the smoke tests run under pytest-django's test database) and
creates, then leaves behind, only rows of its own users (usernames ``bench-*``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import requests

REPO = Path(__file__).resolve().parent.parent
#: The prefix of every user the benchmarks create (and delete again at the next run).
USER_PREFIX = "bench-"
#: Where a load generator's answers count as the server's failures.
LOAD_TIMEOUT = 10


class BenchmarkError(RuntimeError):
    """A case cannot produce honest figures: a service is missing, an answer is wrong."""


# --- options and results ------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """How to run: ``smoke`` shrinks every count to seconds; ``rounds`` overrides each
    case's default; ``load_generator`` is ``auto`` (wrk if installed), ``wrk`` or
    ``python``; ``workdir`` holds certificates, logs and scripts."""

    smoke: bool = False
    rounds: int | None = None
    load_generator: str = "auto"
    workdir: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="hyperid-mfa-bench-"))
    )

    def pick(self, full: Any, smoke: Any) -> Any:
        return smoke if self.smoke else full

    def rounds_for(self, default: int) -> int:
        if self.smoke:
            return 1
        return self.rounds or default


@dataclass(frozen=True)
class Figure:
    """One row of the results table."""

    measure: str
    value: str
    ratio: str = ""
    goal: str = ""
    met: bool | None = None  # None: reported, no goal


@dataclass
class CaseResult:
    number: int
    title: str
    figures: list[Figure] = field(default_factory=list)
    #: How it was measured, spreads, anything a reader needs to trust the figures.
    notes: list[str] = field(default_factory=list)
    #: The raw numbers (medians, per-round values), for tests and for --json.
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


# --- statistics -----------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    if not values:
        raise BenchmarkError("no value to take the median of")
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100)."""
    if not values:
        raise BenchmarkError("no value to take a percentile of")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def span(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """``min-max`` of the rounds, or the one value."""
    low, high = min(values), max(values)
    if len(values) == 1 or fmt.format(low) == fmt.format(high):
        return fmt.format(low)
    return f"{fmt.format(low)} to {fmt.format(high)}"


def timed(call: Callable[[], Any]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


# --- child processes ---------------------------------------------------------------------------


def child_environment(**extra: str) -> dict[str, str]:
    """The environment of a process the harness starts: the repository importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """A process in a session of its own, its output in a file; ``stop()`` ends the
    whole group: SIGTERM, then SIGKILL."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            list(args),
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )

    def first_line(self, timeout: float) -> str:
        """The first line the process prints (its address), or BenchmarkError."""
        stdout = self.process.stdout
        if stdout is None:  # pragma: no cover - always piped
            raise BenchmarkError(f"{self.name}: no output to read")
        ready, _, _ = select.select([stdout], [], [], timeout)
        line = stdout.readline().decode().strip() if ready else ""
        if not line:
            self.stop()
            raise BenchmarkError(f"{self.name} did not start; its log:\n{self.log()}")
        return line

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(timeout=grace)
        self._signal(signal.SIGKILL)  # whatever it left in its group
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)


@dataclass(frozen=True)
class TLSFiles:
    """A throwaway CA and a certificate for 127.0.0.1 it signed (PEM files)."""

    ca_bundle: Path
    certfile: Path
    keyfile: Path

    @classmethod
    def create(cls, workdir: Path) -> TLSFiles:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        files = cls(workdir / "ca.pem", workdir / "server.pem", workdir / "server.key")
        ca.cert_pem.write_to_path(str(files.ca_bundle))
        cert.cert_chain_pems[0].write_to_path(str(files.certfile))
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(str(files.certfile), append=True)
        cert.private_key_pem.write_to_path(str(files.keyfile))
        return files


class Service:
    """A process the harness started: ``with`` stops it, whatever happens."""

    def __enter__(self: ServiceT) -> ServiceT:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        raise NotImplementedError


ServiceT = TypeVar("ServiceT", bound=Service)


class FakeHyperIDProcess(Service):
    """``benchmarks.fakeserver`` in a process of its own, and its control endpoints."""

    def __init__(self, workdir: Path, tls: TLSFiles | None = None) -> None:
        args = [sys.executable, "-m", "benchmarks.fakeserver", "--port", "0"]
        if tls is not None:
            args += ["--certfile", str(tls.certfile), "--keyfile", str(tls.keyfile)]
        self._child = Child("fakehyperid", args, child_environment(), workdir)
        self.url = self._child.first_line(timeout=30)
        self.http = requests.Session()
        # This CA, whatever REQUESTS_CA_BUNDLE says (DESIGN.md's second trap).
        self.http.trust_env = False
        self.http.verify = str(tls.ca_bundle) if tls is not None else True

    def stop(self) -> None:
        self.http.close()
        self._child.stop()

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        response = self.http.request(method, self.url + path, json=payload, timeout=60)
        if response.status_code != 200:
            raise BenchmarkError(f"fake HyperID {method} {path}: {response.status_code}")
        return response.json()

    def new_user(self, subject: str) -> dict[str, Any]:
        """A HyperID account with a device; its tokens (``access_token``...)."""
        answer: dict[str, Any] = self._call("POST", "/_fake/users", {"subject": subject})
        return answer

    def start_transactions(self, access_token: str, count: int) -> list[int]:
        answer = self._call("POST", "/_bench/start", {"access_token": access_token, "count": count})
        return [int(value) for value in answer["transaction_ids"]]

    def approve(self, transaction_id: int) -> None:
        """The user's phone approves this push."""
        self._call("POST", f"/_fake/transactions/{int(transaction_id)}/approve")

    def pending(self, subject: str) -> list[int]:
        """The transaction ids of this account's pushes still waiting for an answer."""
        answer = self._call("GET", f"/_fake/transactions?subject={quote(subject)}&state=pending")
        return [int(one["transaction_id"]) for one in answer]

    def deny(self, transaction_id: int) -> None:
        """The user's phone denies this push."""
        self._call("POST", f"/_fake/transactions/{int(transaction_id)}/deny")

    def set_latency(self, seconds: float) -> None:
        self._call("POST", "/_bench/latency", {"seconds": seconds})

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("GET", "/_bench/stats")
        return answer

    def calls(self, name: str) -> int:
        return int(self.stats()["calls"].get(name, 0))


def hyperid_settings(api_base_url: str, **extra: Any) -> dict[str, Any]:
    """The ``HYPERID_MFA`` of a case: the fake's address, the benchmark's token key."""
    from benchmarks.project.settings import TOKEN_KEY

    return {
        "API_BASE_URL": api_base_url,
        "ISSUER": api_base_url + "/auth/realms/HyperID",
        "CLIENT_ID": "fake-client",
        "CLIENT_SECRET": "fake-secret",
        "TOKEN_ENCRYPTION_KEYS": [TOKEN_KEY],
        "START_RATE_LIMIT": None,
        **extra,
    }


@contextlib.contextmanager
def project_settings(hyperid_mfa: dict[str, Any]) -> Iterator[None]:
    """The benchmark project's URLs and this ``HYPERID_MFA``, in this process."""
    from django.test import override_settings

    with override_settings(ROOT_URLCONF="benchmarks.project.urls", HYPERID_MFA=hyperid_mfa):
        yield


def require_postgresql(case: str) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        raise BenchmarkError(
            f"{case} needs PostgreSQL (gunicorn workers and poller threads share the "
            f"database); this run is on {connection.vendor}"
        )


def database_url() -> str:
    """The URL of the database this process uses (PostgreSQL), for child processes."""
    from django.db import connection

    require_postgresql("a server process")
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgresql://{auth}{'@' if auth else ''}{host}{port}/{quote(db['NAME'], safe='')}"


_REQUEST_ROWS = """
INSERT INTO {table} (
    id, user_id, transaction_id, action, question, code, fingerprint, status,
    complete_result, created_at, expires_at, completed_at, consumed_at, last_checked_at,
    check_count, last_result, last_error
)
SELECT
    gen_random_uuid(),
    users[1 + mod(g, array_length(users, 1))],
    %(first_id)s + g,
    (%(actions)s::text[])[1 + mod(g, array_length(%(actions)s::text[], 1))],
    'Withdraw 250.00 EUR to Bob?',
    lpad(mod(g, 100)::text, 2, '0'),
    md5(g::text),
    CASE WHEN pending THEN 0
         WHEN roll < 85 THEN 1 WHEN roll < 97 THEN 2 WHEN roll < 99.7 THEN 4 ELSE 99 END,
    CASE WHEN pending THEN NULL WHEN roll < 78 THEN 0 WHEN roll < 85 THEN 1 END,
    created,
    created + interval '5 minutes',
    {completed_at},
    {consumed_at},
    {last_checked_at},
    {check_count},
    0,
    ''
FROM ({drawn}) AS rows,
     (SELECT array_agg(id) AS users FROM {users} WHERE username LIKE %(prefix)s) AS u
"""


def write_requests(table: str, users: str, params: dict[str, Any], **columns: str) -> None:
    """Write MFA requests in one ``INSERT ... SELECT`` on PostgreSQL: the benchmarks'
    way to a table of a million rows in seconds.

    ``columns`` give the SQL of ``drawn`` (a subquery of rows ``g, roll, created,
    pending``: a row number, a draw in [0, 100) that picks the outcome, when it was
    sent, whether it is still pending) and of ``completed_at``, ``consumed_at``,
    ``last_checked_at`` and ``check_count``. Outcomes: 78% approved, 7% denied, 12%
    expired, the rest canceled or failed. ``params``: ``first_id`` (transaction ids
    follow it), ``actions`` (a list, taken in turn), ``prefix`` (a LIKE pattern of the
    users' names; their requests are shared among them in turn), and what ``columns``
    refer to.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_REQUEST_ROWS.format(table=table, users=users, **columns), params)


class Gunicorn(Service):
    """The benchmark project under gunicorn (sync workers), on this process's database,
    SECRET_KEY and the given ``HYPERID_MFA``."""

    def __init__(
        self,
        workdir: Path,
        hyperid_mfa: dict[str, Any],
        *,
        workers: int = 2,
        poll_throttle: bool = True,
        name: str = "gunicorn",
        extra_env: dict[str, str] | None = None,
        threads: int = 1,
    ) -> None:
        from django.conf import settings

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = child_environment(
            DJANGO_SETTINGS_MODULE="benchmarks.project.settings",
            HYPERID_MFA_BENCH_DATABASE=database_url(),
            HYPERID_MFA_BENCH_SECRET_KEY=settings.SECRET_KEY,
            HYPERID_MFA_BENCH_HYPERID_MFA=json.dumps(hyperid_mfa),
            HYPERID_MFA_BENCH_POLL_THROTTLE="on" if poll_throttle else "off",
            **(extra_env or {}),
        )
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            "benchmarks.project.wsgi:application",
            f"--workers={workers}",
            # Threads: gunicorn's gthread workers, each serving that many requests at once.
            "--worker-class=sync" if threads == 1 else f"--threads={threads}",
            f"--bind=127.0.0.1:{port}",
            "--log-level=warning",
            "--timeout=60",
            "--graceful-timeout=5",
        ]
        self._child = Child(name, args, env, workdir)
        #: The servers' environment (settings), for other processes of the same site.
        self.env = env
        self.workers = workers
        self._wait_until_ready(timeout=60)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        answered = 0
        while time.monotonic() < deadline:
            if not self._child.alive():
                break
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/bench/health/", timeout=5).status_code == 200:
                    answered += 1
                    # Each worker imports Django on its first request: ask a few times.
                    if answered >= 4 * self.workers:
                        return
                    continue
            time.sleep(0.1)
        self.stop()
        raise BenchmarkError(f"gunicorn did not answer; its log:\n{self._child.log()}")

    @property
    def pid(self) -> int:
        """The master's process id (its workers are its children)."""
        return self._child.process.pid

    def log(self) -> str:
        return self._child.log()

    def stop(self) -> None:
        self._child.stop()


# --- load generation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """What a load generator saw: answers (of which non-2xx), transport errors, time."""

    generator: str
    answers: int
    non_2xx: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.answers / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> int:
        return self.answers - self.non_2xx


def choose_generator(requested: str) -> str:
    if requested not in ("auto", "wrk", "python"):
        raise BenchmarkError(f"unknown load generator {requested!r}: auto, wrk or python")
    have_wrk = shutil.which("wrk") is not None
    if requested == "wrk" and not have_wrk:
        raise BenchmarkError(
            "wrk is not installed: apt-get install wrk (Debian/Ubuntu) or brew install wrk, "
            "or run with --load-generator python"
        )
    if requested == "auto":
        return "wrk" if have_wrk else "python"
    return requested


_SAFE_LUA = re.compile(r"^[A-Za-z0-9/_\-=.;: ]*$")

_WRK_SCRIPT = """\
local targets = {%(targets)s}
local threads = {}

function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end

function init(args)
  i = offset
end

function request()
  i = i + 1
  local target = targets[(i %% #targets) + 1]
  return wrk.format("GET", target[1], {["Cookie"] = target[2], ["Accept"] = "application/json"})
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"answers": %%d, "seconds": %%.6f, "non_2xx": %%d, "errors": %%d, ' ..
    '"p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration / 1e6, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_load(
    base_url: str,
    targets: Sequence[tuple[str, str]],
    *,
    connections: int,
    duration: float,
    generator: str,
    workdir: Path,
) -> LoadResult:
    """``connections`` closed-loop clients GET ``targets`` (path, cookie) round-robin
    for ``duration`` seconds."""
    if not targets:
        raise BenchmarkError("no target to load")
    if generator == "wrk":
        return _run_wrk(base_url, targets, connections, duration, workdir)
    return _run_python(base_url, targets, connections, duration, workdir)


def _run_wrk(
    base_url: str,
    targets: Sequence[tuple[str, str]],
    connections: int,
    duration: float,
    workdir: Path,
) -> LoadResult:
    for path, cookie in targets:
        if not (_SAFE_LUA.match(path) and _SAFE_LUA.match(cookie)):
            raise BenchmarkError(f"cannot hand {path!r} to wrk's script")
    script = workdir / "load.lua"
    script.write_text(
        _WRK_SCRIPT % {"targets": ",".join(f'{{"{p}", "{c}"}}' for p, c in targets)},
        encoding="utf-8",
    )
    threads = max(1, min(2, connections))
    args = [
        "wrk",
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(duration))}s",  # whole seconds: wrk knows no smaller unit
        f"--timeout={LOAD_TIMEOUT}s",
        f"--script={script}",
        base_url,
    ]
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            args, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    except FileNotFoundError:
        raise BenchmarkError("wrk is not installed: apt-get install wrk") from None
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise BenchmarkError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    return LoadResult(
        generator="wrk",
        answers=int(raw["answers"]),
        non_2xx=int(raw["non_2xx"]),
        errors=int(raw["errors"]),
        seconds=float(raw["seconds"]),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
    )


def _run_python(
    base_url: str,
    targets: Sequence[tuple[str, str]],
    connections: int,
    duration: float,
    workdir: Path,
) -> LoadResult:
    # Two processes: one would be held to one core by its GIL, and slow the
    # measurement down to its own speed.
    processes = max(1, min(2, connections))
    path = workdir / "targets.json"
    path.write_text(json.dumps([list(target) for target in targets]), encoding="utf-8")
    children = []
    for n in range(processes):
        share = connections // processes + (1 if n < connections % processes else 0)
        args = [
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            f"--url={base_url}",
            f"--targets={path}",
            f"--connections={share}",
            f"--duration={duration}",
            f"--offset={n * 7919}",
        ]
        children.append(
            subprocess.Popen(  # noqa: S603 - fixed arguments
                args,
                cwd=REPO,
                env=child_environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    for child in children:
        stdout, stderr = child.communicate(timeout=duration + 60)
        if child.returncode != 0:
            raise BenchmarkError(f"the Python load generator failed: {stderr}")
        outputs.append(json.loads(stdout))
    latencies = [value for output in outputs for value in output["latencies_us"]]
    if not latencies:
        raise BenchmarkError("the load generator got no answer at all")
    return LoadResult(
        generator="python",
        answers=sum(output["answers"] for output in outputs),
        non_2xx=sum(output["non_2xx"] for output in outputs),
        errors=sum(output["errors"] for output in outputs),
        seconds=max(output["elapsed"] for output in outputs),
        p50_ms=percentile(latencies, 50) / 1000,
        p99_ms=percentile(latencies, 99) / 1000,
    )


# --- rows -------------------------------------------------------------------------------------


def reset_database() -> None:
    """Delete what earlier runs left: the benchmark's users, their rows, all sessions."""
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session

    from hyperid_mfa.models import HyperIDToken, MFARequest

    user_model = get_user_model()
    bench_users = user_model._default_manager.filter(username__startswith=USER_PREFIX)
    MFARequest.objects.filter(user__in=bench_users).delete()
    HyperIDToken.objects.filter(user__in=bench_users).delete()
    bench_users.delete()
    Session.objects.all().delete()


def make_users(count: int, tag: str) -> list[Any]:
    """``count`` users named ``bench-<tag>-<n>`` (no usable password: they sign in by cookie)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    user_model = get_user_model()
    prefix = f"{USER_PREFIX}{tag}-"
    user_model._default_manager.bulk_create(
        [
            user_model(username=f"{prefix}{n:05d}", password=make_password(None))
            for n in range(count)
        ]
    )
    return list(user_model._default_manager.filter(username__startswith=prefix).order_by("pk"))


def session_cookies(users: Sequence[Any]) -> list[str]:
    """A signed-in session per user, as ``login()`` would store it; their Cookie headers."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    store = SessionStore()
    expires = timezone.now() + timedelta(days=1)
    rows = []
    cookies = []
    for user in users:
        key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expires))
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={key}")
    Session.objects.bulk_create(rows)
    return cookies


def link_hyperid(fake: FakeHyperIDProcess, user: Any) -> str:
    """Give ``user`` a HyperID account in the fake and store its tokens; the access token."""
    from hyperid_mfa.tokens import store_tokens

    pair = fake.new_user(f"subject-{user.pk}")
    store_tokens(user, pair["access_token"], pair["refresh_token"], expires_in=86400)
    return str(pair["access_token"])


def pending_requests(owners: Sequence[tuple[Any, int]], action: str) -> list[Any]:
    """Pending MFA requests, one per (user, fake transaction id), never checked yet."""
    from django.utils import timezone

    from hyperid_mfa.models import MFARequest

    now = timezone.now()
    rows = [
        MFARequest(
            user=user,
            transaction_id=transaction_id,
            action=action,
            question="Benchmark?",
            code="42",
            created_at=now,
            expires_at=now + timedelta(hours=1),
        )
        for user, transaction_id in owners
    ]
    MFARequest.objects.bulk_create(rows, batch_size=1000)
    return rows


# --- the machine ----------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def versions() -> dict[str, str]:
    """Python, the libraries measured, the database server and the load generator."""
    from importlib.metadata import PackageNotFoundError, version

    from django.db import connection

    found = {"Python": platform.python_version()}
    for name in ("Django", "djangorestframework", "requests", "urllib3", "gunicorn", "psycopg"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            found["PostgreSQL"] = str(cursor.fetchone()[0])
        else:
            found[connection.vendor] = connection.Database.sqlite_version  # type: ignore[attr-defined]
    wrk = shutil.which("wrk")
    if wrk:
        output = subprocess.run(  # noqa: S603 - fixed arguments
            [wrk, "--version"], capture_output=True, text=True, check=False
        )
        words = (output.stdout or output.stderr).split()  # "wrk 4.1.0 [epoll] ..."
        found["wrk"] = words[1] if len(words) > 1 else "installed"
    else:
        found["wrk"] = "not installed"
    return found
