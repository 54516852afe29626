"""Real Celery workers (separate processes, Redis broker) on the test's PostgreSQL database.

Each worker runs ``celery -A tests.celery_app worker --pool=threads`` with
``tests.celery_settings``: the test database (committed rows, hence
``transaction=True``) and the FakeHyperID this test serves over HTTP. Workers are
stopped when the test ends, pass or fail; their output is shown when it fails.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from hyperid_mfa import services
from hyperid_mfa.models import MFARequest, State
from hyperid_mfa.testing import FakeHyperID, FakeHyperIDServer
from tests.celery_workers import Child, ChildGroup, child_environment, serve_fake, wait_for
from tests.conftest import import_or_skip, link

import_or_skip("celery")

from hyperid_mfa import tasks  # noqa: E402 (needs Celery, checked just above)
from tests import celery_app  # noqa: E402

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.celery,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

#: Seconds a worker may take to start, and a task or a state change to arrive.
STARTUP_TIMEOUT = 60
TIMEOUT = 60


@pytest.fixture
def fake_server(settings) -> Iterator[FakeHyperIDServer]:
    """FakeHyperID over HTTP: this process and the workers both talk to it."""
    with serve_fake(settings) as server:
        yield server


@pytest.fixture
def fake(fake_server) -> FakeHyperID:
    return fake_server.fake


@pytest.fixture(scope="module")
def celery_run_keys() -> Iterator[None]:
    """Remove this run's keys from Redis after the module (queue bindings never expire)."""
    yield
    import redis

    client = redis.Redis.from_url(celery_app.BROKER_URL)
    try:
        keys = list(client.scan_iter(match=f"{celery_app.KEY_PREFIX}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def start_worker(celery_run_keys, transactional_db, settings) -> Iterator[Callable[[str], str]]:
    """Start a Celery worker process; returns its node name once it answers a ping.

    The workers get this test's HYPERID_MFA as it stands when each one starts.
    Depending on ``transactional_db`` makes them stop before the tables are flushed.
    """
    with ChildGroup() as group:

        def start(name: str) -> str:
            node = f"{name}.{celery_app.RUN_ID}@localhost"
            env = child_environment(
                settings.HYPERID_MFA,
                HYPERID_MFA_TEST_CELERY_BROKER=celery_app.BROKER_URL,
                HYPERID_MFA_TEST_CELERY_RUN=celery_app.RUN_ID,
            )
            worker = group.start(
                name,
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "--app=tests.celery_app",
                    "worker",
                    "--pool=threads",
                    "--concurrency=2",
                    f"--queues={celery_app.QUEUE}",
                    f"--hostname={node}",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                env,
            )
            wait_for(lambda: answers_ping(worker, node), STARTUP_TIMEOUT, f"{node} to start")
            return node

        yield start


def answers_ping(worker: Child, node: str) -> bool:
    if not worker.alive():
        pytest.fail(f"the worker {node} exited with {worker.process.returncode}")
    return bool(celery_app.app.control.ping(destination=[node], timeout=0.5))


def states() -> Counter[str]:
    return Counter(r.state for r in MFARequest.objects.all())


@pytest.fixture
def no_rate_limit(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": None}


def test_a_worker_learns_the_users_answers_when_the_periodic_task_runs(
    fake, user, start_worker, no_rate_limit
):
    link(fake, user)
    requests = [services.start_request(user, "payments.withdraw") for _ in range(5)]
    fake.approve(requests[0].transaction_id)
    fake.approve(requests[1].transaction_id)
    fake.deny(requests[2].transaction_id)
    node = start_worker("worker")

    began = time.monotonic()
    result = tasks.refresh_pending.apply_async(kwargs={"concurrency": 2})
    wait_for(
        lambda: states() == {State.APPROVED: 2, State.DENIED: 1, State.PENDING: 2},
        TIMEOUT,
        "the worker to record the answers",
    )
    print(f"\nperiodic task: answers recorded {time.monotonic() - began:.2f}s after sending it")

    assert result.get(timeout=TIMEOUT) == 5
    assert result.worker == node
    assert fake.call_count("status-get") == 5
    assert services.consume_approval(user, "payments.withdraw") is not None


def test_refresh_after_start_learns_an_approval_with_no_poller_running(
    fake, user, start_worker, settings
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "REFRESH_AFTER_START": 1}
    link(fake, user)
    start_worker("worker")

    began = time.monotonic()
    request = services.start_request(user, "payments.withdraw")
    fake.approve(request.transaction_id)  # the user answers within the second

    wait_for(
        lambda: MFARequest.objects.get(pk=request.pk).state == State.APPROVED,
        TIMEOUT,
        "the scheduled refresh",
    )
    took = time.monotonic() - began
    print(f"\nREFRESH_AFTER_START=1: approval recorded {took:.2f}s after the push")
    assert took >= 1  # the countdown was kept
    assert fake.call_count("status-get") == 1


def test_two_workers_share_200_pending_requests_and_never_ask_about_one_twice(
    fake, fake_server, user, start_worker, settings, no_rate_limit
):
    link(fake, user)
    with fake.mock():  # the pushes are set up in-process: only the polls use HTTP
        requests = [services.start_request(user, "payments.withdraw") for _ in range(200)]
    fake.clear_calls()
    # A request checked once is not due again during the test: a second status-get for
    # it would be a request polled twice, never a legitimate recheck.
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "MIN_REFRESH_INTERVAL": 600}
    fake_server.latency = 0.01  # long enough for the workers' rounds to overlap
    nodes = {start_worker("worker-a"), start_worker("worker-b")}

    began = time.monotonic()
    refreshed_by: Counter[str] = Counter()
    # Many small rounds at once, so that both workers claim batches side by side; more
    # rounds follow only if SKIP LOCKED left a round empty-handed while others held rows.
    while MFARequest.objects.filter(last_checked_at__isnull=True).exists():
        if time.monotonic() - began > TIMEOUT:
            pytest.fail("the workers did not get through the 200 requests")
        results = [
            tasks.refresh_pending.apply_async(kwargs={"limit": 20, "concurrency": 4})
            for _ in range(16)
        ]
        for result in results:
            count = result.get(timeout=TIMEOUT)
            refreshed_by[result.worker] += count
    print(
        f"\ntwo workers: 200 requests in {time.monotonic() - began:.2f}s, "
        f"{dict(refreshed_by)} per worker"
    )

    asked = Counter(c.transaction_id for c in fake.calls if c.name == "status-get")
    assert set(asked) == {r.transaction_id for r in requests}
    assert max(asked.values()) == 1
    assert sum(refreshed_by.values()) == 200
    assert {node for node, count in refreshed_by.items() if count} == nodes
    assert set(MFARequest.objects.values_list("check_count", flat=True)) == {1}
