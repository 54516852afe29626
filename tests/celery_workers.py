"""Processes that tests start (Celery workers, pollers), the FakeHyperID they talk to,
and how they are always stopped.

A child process runs with ``tests.celery_settings``: the test's own database and the
test's FakeHyperID. Its output goes to a file; a :class:`ChildGroup` stops every
child when the test ends, pass or fail (SIGTERM, then SIGKILL to its whole process
group), and prints the output, which pytest shows when the test failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from hyperid_mfa.testing import FakeHyperID, FakeHyperIDServer

ROOT = Path(__file__).resolve().parent.parent


def child_environment(hyperid_mfa: dict[str, Any], **extra: str) -> dict[str, str]:
    """The environment of a child on the test database, with these HYPERID_MFA entries."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.celery_settings",
        HYPERID_MFA_CHILD_DB_NAME=connection.settings_dict["NAME"],
        HYPERID_MFA_CHILD_SETTINGS=json.dumps(hyperid_mfa),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def serve_fake(settings: Any, **hyperid_mfa: Any) -> Iterator[FakeHyperIDServer]:
    """Serve a new FakeHyperID over HTTP; point HYPERID_MFA (with these entries) at it.

    Child processes reach it through the settings that ``child_environment`` passes on.
    """
    fake = FakeHyperID(base_url=None)
    with fake.serve() as server:
        settings.HYPERID_MFA = {**settings.HYPERID_MFA, **fake.settings(), **hyperid_mfa}
        yield server


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class Child:
    """One process started by a test; its output goes to a temporary file."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str]) -> None:
        self.name = name
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"hyperid-mfa-{name}-", suffix=".log"
        )
        # A session of its own: stop() signals the whole group, whatever it spawned.
        self.process = subprocess.Popen(
            list(args),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the process dies at once, its transactions with it."""
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; idempotent."""
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        # Whatever the process left behind in its group goes too.
        self._signal_group(signal.SIGKILL)

    def close(self) -> None:
        self._log.close()

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)


class ChildGroup:
    """The children of one test: ``with ChildGroup() as group: group.start(...)``.

    Leaving the block stops them all, whether the test passed or not, and prints
    their output (pytest shows it for a failed test).
    """

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, name: str, args: Sequence[str], env: dict[str, str]) -> Child:
        child = Child(name, args, env)
        self.children.append(child)
        return child

    def python(self, name: str, code: str, env: dict[str, str]) -> Child:
        """A ``python -c code`` child."""
        return self.start(name, [sys.executable, "-c", code], env)

    def __enter__(self) -> ChildGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for child in self.children:
            child.stop()
        for child in self.children:
            print(f"\n----- {child.name} (pid {child.pid}, exit {child.process.returncode}):")
            print(child.output())
            child.close()
