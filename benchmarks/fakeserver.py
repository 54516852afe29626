"""A FakeHyperID in a process of its own, for the benchmarks.

``python -m benchmarks.fakeserver [--port 0] [--certfile F --keyfile F]`` prints its
base URL on the first line, then serves until SIGTERM. Running apart from the
process being measured keeps the fake's work off that process's GIL.

Besides the fake's own ``/_fake/`` control endpoints, it answers:

- ``POST /_bench/latency`` ``{"seconds": s}``: every HyperID call (not the control
  endpoints) is answered ``s`` seconds late from now on;
- ``POST /_bench/start`` ``{"access_token": t, "count": n}``: starts ``n`` pushes for
  the token's user at once (as ``n`` start calls would) and returns their
  ``transaction_ids``;
- ``GET /_bench/stats``: ``connections_accepted``, ``requests_handled`` and the
  calls received by kind.
"""

from __future__ import annotations

import argparse
import json
import signal
import ssl
import sys
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from hyperid_mfa.constants import START_PATH
from hyperid_mfa.testing import FakeHyperID, FakeHyperIDServer, FakeResponse

BENCH_PREFIX = "/_bench/"
CONTROL_PREFIX = "/_fake/"
#: Long enough that nothing expires during a run.
TTL = 24 * 3600.0


def _json(status: int, payload: Any) -> FakeResponse:
    return FakeResponse(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())


class BenchHandler:
    """The fake's own ``handle``, plus latency on HyperID calls and the ``/_bench/`` routes."""

    def __init__(self, fake: FakeHyperID) -> None:
        self.fake = fake
        self.latency = 0.0
        self.server: FakeHyperIDServer | None = None

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> FakeResponse:
        if path.startswith(BENCH_PREFIX):
            return self._bench(method, path[len(BENCH_PREFIX) :], body)
        response = self.fake.handle(method, path, headers, body)
        if CONTROL_PREFIX not in path:
            response.delay += self.latency
        return response

    def _bench(self, method: str, route: str, body: bytes) -> FakeResponse:
        data = json.loads(body or b"{}")
        if method == "POST" and route == "latency":
            seconds = float(data["seconds"])
            if seconds < 0:
                return _json(400, {"error": "seconds must be >= 0"})
            self.latency = seconds
            return _json(200, {"latency": seconds})
        if method == "POST" and route == "start":
            return _json(200, {"transaction_ids": self._start(data["access_token"], data["count"])})
        if method == "GET" and route == "stats":
            server = self.server
            calls: dict[str, int] = {}
            for call in self.fake.calls:
                calls[call.name] = calls.get(call.name, 0) + 1
            return _json(
                200,
                {
                    "connections_accepted": server.connections_accepted if server else 0,
                    "requests_handled": server.requests_handled if server else 0,
                    "calls": calls,
                },
            )
        return _json(404, {"error": "not found"})

    def _start(self, access_token: str, count: int) -> list[int]:
        path = urlsplit(self.fake.base_url).path + START_PATH
        headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}
        values = json.dumps({"version": 1, "action": {"type": "question", "action_info": "?"}})
        body = json.dumps({"template_id": 4, "values": values, "code": "42"}).encode()
        ids = []
        for _ in range(int(count)):
            answer = self.fake.handle("POST", path, headers, body).json()
            if answer.get("result") != 0:
                raise RuntimeError(f"the fake refused a start: {answer}")
            ids.append(int(answer["transaction_id"]))
        return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fakeserver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--certfile", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--keyfile", help="the certificate's private key (PEM)")
    args = parser.parse_args(argv)
    context = None
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
    fake = FakeHyperID(base_url=None, transaction_ttl=TTL, token_ttl=TTL)
    handler = BenchHandler(fake)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    with fake.serve(args.host, args.port, handler=handler.handle, ssl_context=context) as server:
        handler.server = server
        print(server.url, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
