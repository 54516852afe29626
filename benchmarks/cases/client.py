"""Case 1: status-get calls per second, HyperIDClient against the public SDK's way.

The public SDK sends every call with ``requests.post``: a new session, a new
connection, a new TLS handshake (and the CA bundle loaded again) each time.
``HyperIDClient`` keeps one pooled session, so after the first call each status-get
is a request on a warm TLS connection. Both talk HTTPS to a FakeHyperID in its own
process on loopback, with a throwaway trustme certificate they must verify: the
cheapest handshake there is; over a real network each saved handshake also saves
round trips.
"""

from __future__ import annotations

from typing import Any

import requests

from hyperid_mfa.client import HyperIDClient
from hyperid_mfa.constants import STATUS_GET_PATH

from ..harness import (
    BenchmarkError,
    CaseResult,
    FakeHyperIDProcess,
    Figure,
    Options,
    TLSFiles,
    median,
    span,
)

NUMBER = 1
TITLE = "Client: status-get calls per second over HTTPS"
GOAL = 2.5
TIMEOUT = (3.05, 10)


class NaiveClient:
    """What the public SDK does: ``requests.post`` per call, no session."""

    def __init__(self, base_url: str, ca_bundle: str) -> None:
        self.url = base_url + STATUS_GET_PATH
        self.ca_bundle = ca_bundle

    def get_transaction_status(self, access_token: str, transaction_id: int) -> dict[str, Any]:
        response = requests.post(
            self.url,
            json={"transaction_id": transaction_id},
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=TIMEOUT,
            verify=self.ca_bundle,
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        if answer.get("result") != 0:
            raise BenchmarkError(f"status-get answered {answer}")
        return answer


def _rate(call: Any, seconds: float, minimum: int) -> tuple[float, int]:
    """Calls per second of ``call`` over at least ``seconds`` and ``minimum`` calls."""
    import time

    count = 0
    began = time.perf_counter()
    deadline = began + seconds
    while count < minimum or time.perf_counter() < deadline:
        call()
        count += 1
    return count / (time.perf_counter() - began), count


def run(options: Options) -> CaseResult:
    seconds = options.pick(3.0, 0.2)
    minimum = options.pick(200, 10)
    rounds = options.rounds_for(5)
    tls = TLSFiles.create(options.workdir)
    with FakeHyperIDProcess(options.workdir, tls=tls) as fake:
        token = fake.new_user("client-benchmark")["access_token"]
        [transaction_id] = fake.start_transactions(token, 1)
        pooled = HyperIDClient(base_url=fake.url, timeout=TIMEOUT, max_retries=0)
        # The session the client passes ``verify`` from on every call (DESIGN.md's
        # second trap: REQUESTS_CA_BUNDLE cannot override it).
        pooled.session.verify = str(tls.ca_bundle)
        naive = NaiveClient(fake.url, str(tls.ca_bundle))

        def ours() -> None:
            if not pooled.get_transaction_status(token, transaction_id).is_pending:
                raise BenchmarkError("the transaction should be pending")

        def theirs() -> None:
            naive.get_transaction_status(token, transaction_id)

        for _ in range(5):  # warm both up: imports, the pool's first connection
            ours()
            theirs()
        ours_rates: list[float] = []
        theirs_rates: list[float] = []
        ours_connections: list[float] = []
        theirs_connections: list[float] = []
        for round_number in range(rounds):
            sides = [
                (ours, ours_rates, ours_connections),
                (theirs, theirs_rates, theirs_connections),
            ]
            if round_number % 2:
                sides.reverse()  # neither side always runs on a machine warmed by the other
            for call, rates, connections in sides:
                before = fake.stats()["connections_accepted"]
                rate, count = _rate(call, seconds, minimum)
                opened = fake.stats()["connections_accepted"] - before
                rates.append(rate)
                connections.append(100 * opened / count)
        pooled.close()
    ratios = [a / b for a, b in zip(ours_rates, theirs_rates, strict=True)]
    ratio = median(ratios)
    result = CaseResult(NUMBER, TITLE)
    result.figures = [
        Figure(
            "status-get calls/s, HyperIDClient vs requests.post per call",
            f"{median(ours_rates):,.0f}/s vs {median(theirs_rates):,.0f}/s",
            f"{ratio:.2f}x",
            f">= {GOAL}x",
            ratio >= GOAL,
        ),
        Figure(
            "TCP+TLS connections opened per 100 calls",
            f"{median(ours_connections):.1f} vs {median(theirs_connections):.0f}",
        ),
    ]
    result.notes = [
        f"{rounds} round(s); each side calls for {seconds:g} s (at least {minimum} calls) "
        "from one thread, alternating which side goes first; the ratio is the median of "
        f"the per-round ratios ({span(ratios)}x).",
        "Both verify the server's certificate against a throwaway trustme CA; the fake "
        "runs in its own process, answers at once and sets TCP_NODELAY.",
    ]
    result.data = {
        "ours_per_second": ours_rates,
        "naive_per_second": theirs_rates,
        "ratios": ratios,
        "ratio": ratio,
    }
    return result
