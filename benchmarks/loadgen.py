"""A closed-loop HTTP load generator in Python, for machines without wrk.

``python -m benchmarks.loadgen --url http://127.0.0.1:8000 --targets FILE
--connections 8 --duration 5`` runs ``connections`` clients, each sending its next
request as soon as it has the last answer, for ``duration`` seconds, and prints one
JSON line: answers by class, errors, and every latency in microseconds.

``FILE`` is a JSON list of ``[path, cookie]`` pairs; client ``i`` starts at pair
``offset + i`` and walks the list round-robin. The harness starts several of these
processes so that the generator is not held to one core by the GIL; wrk is still
the better tool (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


class Client(threading.Thread):
    def __init__(
        self, host: str, port: int, targets: list[list[str]], start: int, deadline: float
    ) -> None:
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.targets = targets
        self.index = start
        self.deadline = deadline
        self.latencies: list[int] = []
        self.non_2xx = 0
        self.errors = 0

    def run(self) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            while time.perf_counter() < self.deadline:
                path, cookie = self.targets[self.index % len(self.targets)]
                self.index += 1
                headers = {"Cookie": cookie, "Accept": "application/json"}
                began = time.perf_counter()
                try:
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    self.errors += 1
                    connection.close()
                    continue
                self.latencies.append(int((time.perf_counter() - began) * 1e6))
                if not 200 <= response.status < 300:
                    self.non_2xx += 1
                if response.will_close:
                    connection.close()  # reopened by the next request
        finally:
            connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--targets", required=True, help="JSON file of [path, cookie] pairs")
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--offset", type=int, default=0)
    args = parser.parse_args(argv)
    with open(args.targets, encoding="utf-8") as file:
        targets = json.load(file)
    url = urlsplit(args.url)
    began = time.perf_counter()
    deadline = began + args.duration
    clients = [
        Client(url.hostname or "127.0.0.1", url.port or 80, targets, args.offset + i, deadline)
        for i in range(args.connections)
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    elapsed = time.perf_counter() - began
    latencies = [value for client in clients for value in client.latencies]
    result = {
        "answers": len(latencies),
        "non_2xx": sum(client.non_2xx for client in clients),
        "errors": sum(client.errors for client in clients),
        "elapsed": elapsed,
        "latencies_us": latencies,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
