"""Several app servers sharing one PostgreSQL and one Redis, with the simulator.

What a production site runs, on one machine: ``servers`` gunicorn servers of the
benchmark project (each its own master and sync workers), Django's cache on a shared
Redis (the push limit's slots), the one database this process uses, and HyperID
played by the ``hyperid_mfa_simulator`` management command, driven through its
control endpoints (``/_fake/``). ``tests/test_scale.py`` and the soak
(``benchmarks/soak.py``) both build on it.

The gated action is the benchmark project's ``bench/act/`` view: each run appends the
posted ``order`` to a log file shared by every server, so that a run can count how
many times each order ran, whichever server ran it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .harness import (
    BenchmarkError,
    Child,
    Gunicorn,
    Service,
    child_environment,
    hyperid_settings,
    make_users,
    project_settings,
    session_cookies,
)

#: The gated view of the several-server runs (benchmarks/project/views.py: act_view).
ACT_PATH = "/bench/act/"
#: What the simulator's MFA start call is given (HyperID's own start body).
_START_VALUES = json.dumps({"version": 1, "action": {"type": "question", "action_info": "?"}})


@dataclass(frozen=True)
class SiteUser:
    """A signed-in user of the site: the row, its session's Cookie header, and its
    HyperID access token (as stored for the site)."""

    user: Any
    cookie: str
    access_token: str


class Simulator(Service):
    """``manage.py hyperid_mfa_simulator`` on a free port, with the project's client id."""

    def __init__(self, workdir: Path, hyperid_mfa: dict[str, Any], *options: str) -> None:
        env = child_environment(
            DJANGO_SETTINGS_MODULE="benchmarks.project.settings",
            HYPERID_MFA_BENCH_HYPERID_MFA=json.dumps(hyperid_mfa),
        )
        args = [sys.executable, "-m", "django", "hyperid_mfa_simulator", "--port", "0", *options]
        self._child = Child("simulator", args, env, workdir)
        line = self._child.first_line(timeout=60)
        match = re.match(r"HyperID simulator at (http://127\.0\.0\.1:\d+) ", line)
        if match is None:
            self._child.stop()
            raise BenchmarkError(f"the simulator did not say where it listens: {line!r}")
        self.url = match.group(1)
        self.http = requests.Session()
        self.http.trust_env = False

    def stop(self) -> None:
        self.http.close()
        self._child.stop()

    def _call(self, method: str, path: str, payload: Any = None, **kwargs: Any) -> Any:
        response = self.http.request(method, self.url + path, json=payload, timeout=30, **kwargs)
        if response.status_code != 200:
            raise BenchmarkError(f"simulator {method} {path}: {response.status_code}")
        return response.json()

    def new_user(self, subject: str) -> dict[str, Any]:
        """A HyperID account with a device; its tokens (``access_token``...)."""
        answer: dict[str, Any] = self._call("POST", "/_fake/users", {"subject": subject})
        return answer

    def start(self, access_token: str) -> int:
        """A push started as the app starts one; its transaction id."""
        from hyperid_mfa.constants import START_PATH

        answer = self._call(
            "POST",
            START_PATH,
            {"template_id": 4, "values": _START_VALUES, "code": "42"},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        return int(answer["transaction_id"])

    def answer(self, transaction_id: int, verb: str) -> bool:
        """The phone answers (``approve``, ``deny``); False when the push was no longer
        pending (expired, answered, unknown)."""
        response = self.http.post(
            f"{self.url}/_fake/transactions/{int(transaction_id)}/{verb}", timeout=30
        )
        if response.status_code in (404, 409):
            return False
        if response.status_code != 200:
            raise BenchmarkError(f"simulator {verb} {transaction_id}: {response.status_code}")
        return True

    def calls(self) -> dict[str, int]:
        """HyperID calls answered so far, by call (``start``, ``status-get``...)."""
        answer: dict[str, int] = self._call("GET", "/_fake/calls")
        return answer

    def inject(self, fault: str, **params: Any) -> None:
        """A fault on every matching call until cleared (``times`` defaults to forever)."""
        params.setdefault("times", None)
        self._call("POST", "/_fake/faults", {"fault": fault, **params})

    def clear_faults(self) -> None:
        self._call("DELETE", "/_fake/faults")


class Cluster(Service):
    """The simulator and ``servers`` gunicorn servers sharing this process's database
    and the Redis at ``redis_url``; ``hyperid`` adds to their ``HYPERID_MFA``."""

    def __init__(
        self,
        workdir: Path,
        redis_url: str,
        *,
        servers: int = 3,
        workers: int = 2,
        hyperid: dict[str, Any] | None = None,
        simulator_options: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.action_log = workdir / "actions.log"
        self.action_log.touch()
        self.servers: list[Gunicorn] = []
        # The simulator first: its address is the servers' API_BASE_URL.
        self.simulator = Simulator(
            workdir, hyperid_settings("http://127.0.0.1:9", **(hyperid or {})), *simulator_options
        )
        try:
            self.hyperid_mfa = hyperid_settings(self.simulator.url, **(hyperid or {}))
            self.env = {
                "HYPERID_MFA_BENCH_CACHE": redis_url,
                # A prefix of this run's own: earlier runs' keys mean nothing to it.
                "HYPERID_MFA_BENCH_CACHE_PREFIX": f"bench-{os.getpid()}-{time.time_ns()}",
                "HYPERID_MFA_BENCH_ACTION_LOG": str(self.action_log),
            }
            for number in range(servers):
                self.servers.append(
                    Gunicorn(
                        workdir,
                        self.hyperid_mfa,
                        workers=workers,
                        poll_throttle=False,
                        name=f"server-{number + 1}",
                        extra_env=self.env,
                    )
                )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.simulator.stop()

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def users(self, count: int, tag: str) -> list[SiteUser]:
        """``count`` signed-in users, each with a HyperID account in the simulator and
        its tokens stored."""
        from hyperid_mfa.tokens import store_tokens

        users = make_users(count, tag)
        tokens = []
        with project_settings(self.hyperid_mfa):
            for user in users:
                pair = self.simulator.new_user(f"subject-{tag}-{user.pk}")
                store_tokens(user, pair["access_token"], pair["refresh_token"], expires_in=86400)
                tokens.append(str(pair["access_token"]))
        cookies = session_cookies(users)
        return [SiteUser(*each) for each in zip(users, cookies, tokens, strict=True)]

    def actions(self) -> Counter[str]:
        """How many times each order ran, on any server."""
        runs: Counter[str] = Counter()
        for line in self.action_log.read_text().splitlines():
            order = line.split(" ", 1)[0]
            runs[order] += 1
        return runs

    def poller(self, name: str, *options: str) -> Child:
        """``manage.py hyperid_mfa_poll`` with the servers' settings (one pass unless
        ``--loop`` is among the options)."""
        env = dict(self.servers[0].env)
        args = [sys.executable, "-m", "django", "hyperid_mfa_poll", *options]
        return Child(name, args, env, self.workdir)

    def rss(self) -> list[int]:
        """Resident memory of each server (its master and workers), in bytes."""
        return [tree_rss(server.pid) for server in self.servers]


def tree_rss(pid: int) -> int:
    """The resident memory of a process and its descendants, in bytes (Linux /proc)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue  # gone since it was listed
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total += int(match.group(1)) * 1024
        pending.extend(int(child) for child in children)
    return total
