"""``pip install "django-hyperid-mfa[celery]"``: a real Celery worker on Redis, set up
as docs/operations.md says, learns what became of pending requests: the one a push
scheduled (``REFRESH_AFTER_START``) and those of a periodic ``refresh_pending``.

Redis: ``HYPERID_MFA_TEST_CELERY_BROKER`` (default ``redis://127.0.0.1:6379/14``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from hyperid_mfa import services, tasks
from hyperid_mfa.models import MFARequest, State

from celery_app import app

pytestmark = pytest.mark.django_db(transaction=True)

HERE = Path(__file__).resolve().parent
WORKER = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool", "solo"]
WORKER += ["--without-gossip", "--without-mingle", "--loglevel", "INFO"]
#: The simulator answers at once: a worker may ask again right away.
FAST = {"MIN_REFRESH_INTERVAL": 0}


@pytest.fixture
def worker(simulator: Any, settings: Any) -> Iterator[None]:
    """``celery -A celery_app worker`` on this test's database and simulator; stopped
    (SIGTERM, then SIGKILL to its process group) after the test, its log printed."""
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, **FAST}
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings_celery",
        "HYPERID_MFA_INSTALLS_DB": connection.settings_dict["NAME"],
        "HYPERID_MFA_INSTALLS_SIMULATOR": json.dumps({**simulator.settings(), **FAST}),
        "HYPERID_MFA_INSTALLS_RUN": settings.INSTALLS_RUN,
    }
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*WORKER, "-Q", queue],
            cwd=HERE,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield
        finally:
            stop(process)
            log.seek(0)
            print(f"----- the worker (exit {process.returncode}):\n{log.read().decode()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def state_within(mfa_request: MFARequest, seconds: float, wanted: str) -> str:
    """The request's state once it is ``wanted``, or when ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        mfa_request.refresh_from_db()
        if mfa_request.state == wanted or time.monotonic() > deadline:
            return str(mfa_request.state)
        time.sleep(0.1)


def test_the_celery_app_finds_the_apps_tasks():
    app.loader.import_default_modules()

    assert {"hyperid_mfa.refresh_pending", "hyperid_mfa.refresh_request"} <= set(app.tasks)


def test_a_push_schedules_a_refresh_that_the_worker_runs(alice, simulator, worker, settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "REFRESH_AFTER_START": 1}

    pending = services.start_request(alice, "wallet.transfer", question="Transfer 250 EUR?")
    [push] = simulator.pending("alice")
    simulator.approve(push.transaction_id)

    # Nobody polls here: only the task the push scheduled asks HyperID.
    assert state_within(pending, 60, State.APPROVED) == State.APPROVED


def test_the_periodic_task_refreshes_every_pending_request(alice, simulator, worker):
    first = services.start_request(alice, "wallet.transfer", question="Transfer 1 EUR?")
    second = services.start_request(alice, "wallet.payee", question="Add Mallory as a payee?")
    first_push, second_push = simulator.pending("alice")
    simulator.approve(first_push.transaction_id)
    simulator.deny(second_push.transaction_id)

    refreshed = tasks.refresh_pending.delay().get(timeout=60)

    assert refreshed == 2
    assert state_within(first, 0, State.APPROVED) == State.APPROVED
    assert state_within(second, 0, State.DENIED) == State.DENIED
