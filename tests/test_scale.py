"""Several servers, one promise: three gunicorn servers sharing PostgreSQL and Redis.

The benchmark project runs in three gunicorn servers (two sync workers each), with
Django's cache on one Redis and the test database shared, and the
``hyperid_mfa_simulator`` command as HyperID (``benchmarks/cluster.py``). Requests
are spread over the servers; what each test checks is counted where it cannot be
fooled: pushes and status-gets at the simulator, actions in the log every server
appends to, refreshes in the pollers' own summaries.

Needs PostgreSQL (``HYPERID_MFA_TEST_DATABASE``) and Redis (``HYPERID_MFA_TEST_REDIS``,
default db 15 of 127.0.0.1:6379); skips without them, and fails instead under
``HYPERID_MFA_REQUIRE_SERVICES=1`` (CI's ``scale`` step).
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
if not (BENCHMARKS / "cluster.py").is_file():  # an sdist ships tests/, not benchmarks/
    pytest.skip("benchmarks/ is not part of this tree", allow_module_level=True)

from benchmarks.cluster import ACT_PATH, Cluster  # noqa: E402
from benchmarks.harness import pending_requests  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

REDIS_URL = os.environ.get("HYPERID_MFA_TEST_REDIS", "redis://127.0.0.1:6379/15")
#: The push limit of the servers: a number small enough to reach in a test.
PUSHES = 3
#: MIN_REFRESH_INTERVAL of the servers, seconds.
INTERVAL = 1
#: WATCHED_REFRESH_INTERVAL of the servers: the pace while someone polls, seconds.
WATCHED = 0.5


@pytest.fixture(scope="module")
def cluster(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.skip("needs PostgreSQL")  # the marker's check reports it
        with Cluster(
            tmp_path_factory.mktemp("cluster"),
            REDIS_URL,
            hyperid={
                "START_RATE_LIMIT": f"{PUSHES}/10m",
                "MIN_REFRESH_INTERVAL": INTERVAL,
                "WATCHED_REFRESH_INTERVAL": WATCHED,
            },
        ) as running:
            yield running


def submit(url: str, cookie: str, order: str) -> requests.Response:
    """The gated action, asked as a JSON client asks it."""
    return requests.post(
        url + ACT_PATH,
        data={"order": order},
        headers={"Cookie": cookie, "Accept": "application/json"},
        timeout=60,
    )


def code_of(response: requests.Response) -> str:
    if response.status_code == 200:
        return "ran"
    return str(response.json()["code"])


def at_once(calls: list[Any]) -> list[Any]:
    """Run the calls at the same moment, each in a thread of its own; their results."""
    barrier = threading.Barrier(len(calls))

    def run(call: Any) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.mark.django_db(transaction=True)
def test_the_push_limit_holds_across_servers(cluster):
    cookie = cluster.users(1, "limit")[0].cookie
    starts = cluster.simulator.calls()["start"]
    orders = [uuid.uuid4().hex for _ in range(3 * PUSHES)]
    answers = at_once(
        [
            lambda order=order, n=n: submit(cluster.urls[n % 3], cookie, order)
            for n, order in enumerate(orders)
        ]
    )
    codes = sorted(code_of(answer) for answer in answers)
    assert codes == ["mfa_pending"] * PUSHES + ["mfa_rate_limited"] * (2 * PUSHES)
    assert all(a.headers.get("Retry-After") for a in answers if a.status_code == 429)
    # Each server let some through, yet HyperID was asked for PUSHES pushes in all.
    assert cluster.simulator.calls()["start"] - starts == PUSHES


@pytest.mark.django_db(transaction=True)
def test_one_approval_runs_one_action_across_servers(cluster):
    cookie = cluster.users(1, "once")[0].cookie
    order = uuid.uuid4().hex
    first = submit(cluster.urls[0], cookie, order)
    assert code_of(first) == "mfa_pending"
    assert cluster.simulator.answer(first.json()["mfa_request"]["transaction_id"], "approve")
    # Past the refresh interval, so that a resubmission asks HyperID again.
    time.sleep(INTERVAL + 0.2)
    codes: list[str] = []
    for _wave in range(5):
        answers = at_once(
            [lambda n=n: submit(cluster.urls[n % 3], cookie, order) for n in range(12)]
        )
        codes += [code_of(answer) for answer in answers]
        if "ran" in codes:
            break
        time.sleep(INTERVAL)  # the wave met a refresh still within its interval
    assert codes.count("ran") == 1, codes
    # The others found the approval consumed: a new push, or the push limit reached.
    assert set(codes) <= {"ran", "mfa_pending", "mfa_rate_limited"}, codes
    assert cluster.actions()[order] == 1


@pytest.mark.django_db(transaction=True)
def test_status_get_stays_coalesced_across_servers(cluster):
    cookie = cluster.users(1, "poll")[0].cookie
    pending = submit(cluster.urls[0], cookie, uuid.uuid4().hex)
    assert code_of(pending) == "mfa_pending"
    # The status URL names the server that answered; every server answers it.
    status_path = urlsplit(pending.json()["mfa_request"]["status_url"]).path
    before = cluster.simulator.calls()["status-get"]
    seconds = 6.0
    stop = time.monotonic() + seconds
    answered = []

    def poll(n: int) -> None:
        with requests.Session() as http:
            while time.monotonic() < stop:
                answer = http.get(
                    cluster.urls[n % 3] + status_path,
                    headers={"Cookie": cookie, "Accept": "application/json"},
                    timeout=60,
                )
                answered.append(answer.status_code)

    began = time.monotonic()
    with ThreadPoolExecutor(24) as pool:
        list(pool.map(poll, range(24)))
    took = time.monotonic() - began
    upstream = cluster.simulator.calls()["status-get"] - before
    assert set(answered) == {200}
    assert len(answered) > 10 * upstream  # many polls, few of them reached HyperID
    # Polls mean someone waits: at most one call per request per watched interval,
    # whichever of the servers asked, however many pollers.
    assert 0 < upstream <= took / WATCHED + 1, (upstream, took)


@pytest.mark.django_db(transaction=True)
def test_two_pollers_split_the_pending_requests_without_double_refreshes(cluster):
    from hyperid_mfa.models import MFARequest

    owners = [
        (each.user, cluster.simulator.start(each.access_token))
        for each in cluster.users(20, "pollers")
        for _ in range(25)
    ]
    pending_requests(owners, "bench.poll")
    total = len(owners)
    # Each status-get takes 40 ms, so that one poller cannot finish before the other
    # has started.
    cluster.simulator.inject("delay", seconds=0.04, call="status-get")
    before = cluster.simulator.calls()["status-get"]
    try:
        pollers = [cluster.poller(f"poller-{n}", "--concurrency", "4") for n in (1, 2)]
        outputs = []
        for poller in pollers:
            assert poller.process.wait(timeout=90) == 0, poller.log()
            assert poller.process.stdout is not None
            outputs.append(poller.process.stdout.read().decode())
            poller.stop()
    finally:
        cluster.simulator.clear_faults()
    refreshed = [
        int(re.search(r"Refreshed (\d+) pending", output).group(1))  # type: ignore[union-attr]
        for output in outputs
    ]
    assert sum(refreshed) == total, outputs
    assert min(refreshed) > 0, outputs  # both took a share
    assert cluster.simulator.calls()["status-get"] - before == total  # none asked twice
    assert MFARequest.objects.filter(action="bench.poll", check_count=1).count() == total
