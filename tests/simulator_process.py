"""``manage.py hyperid_mfa_simulator`` in a process of its own, as a developer runs it.

Started with the test settings (its client id and secret are the project's), on a
free port, with whatever options a test gives; talked to over HTTP.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from hyperid_mfa.constants import START_PATH

REPO = Path(__file__).resolve().parent.parent
#: The lines the simulator prints at start before any about faults.
BANNER_LINES = 7


def run_simulator(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "django", "hyperid_mfa_simulator", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class SimulatorProcess:
    """A running simulator, a HyperID account ``alice`` in it, and HTTP calls to it."""

    def __init__(self, *args: str) -> None:
        self.process = run_simulator("--port", "0", *args)
        assert self.process.stdout is not None
        self.banner = [self.process.stdout.readline() for _ in range(BANNER_LINES)]
        match = re.match(r"HyperID simulator at (http://127\.0\.0\.1:\d+) ", self.banner[0])
        if not match:
            self.kill()
            raise AssertionError(f"the simulator did not start: {self.banner}")
        self.url = match.group(1)
        self.issuer = f"{self.url}/auth/realms/HyperID"
        self.http = requests.Session()
        self.alice = self.post("/_fake/users", json={"subject": "alice"}).json()
        self.token = self.alice["access_token"]

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.post(self.url + path, timeout=5, **kwargs)

    def get(self, path: str) -> Any:
        return self.http.get(self.url + path, timeout=5).json()

    def call(self, path: str, body: object) -> requests.Response:
        """One of HyperID's MFA calls, with alice's token."""
        return self.post(path, json=body, headers={"Authorization": f"Bearer {self.token}"})

    def start(self) -> requests.Response:
        values = json.dumps({"version": 1, "action": {"type": "question", "action_info": "?"}})
        return self.call(START_PATH, {"template_id": 4, "values": values, "code": "42"})

    def faults(self) -> list[dict[str, object]]:
        answer: list[dict[str, object]] = self.get("/_fake/faults")
        return answer

    def transactions(self, **query: str) -> list[dict[str, Any]]:
        wanted = "&".join(f"{name}={value}" for name, value in query.items())
        answer: list[dict[str, Any]] = self.get(f"/_fake/transactions?{wanted}")
        return answer

    def rest_of_the_output(self) -> str:
        """Stop it as Ctrl-C would; everything it printed."""
        self.http.close()
        self.process.send_signal(signal.SIGTERM)
        # Read through the same reader as the banner: it may hold lines read ahead,
        # which communicate() (reading the pipe itself) would never see.
        assert self.process.stdout is not None
        rest = self.process.stdout.read()
        assert self.process.wait(timeout=10) == 0
        return "".join(self.banner) + rest

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
