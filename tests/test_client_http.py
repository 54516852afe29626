"""HyperIDClient against FakeHyperID over real HTTP on loopback: connections and timeouts."""

from __future__ import annotations

import time

import pytest

from hyperid_mfa.client.calls import HyperIDClient
from hyperid_mfa.exceptions import ServiceUnavailable
from hyperid_mfa.testing import FakeHyperID


@pytest.fixture
def served():
    fake = FakeHyperID(base_url=None)
    with fake.serve() as server:
        subject = fake.add_user()
        token = fake.issue_tokens(subject).access_token
        yield fake, server, token


def test_fifty_status_gets_from_one_client_use_at_most_two_connections(served):
    fake, server, token = served
    client = HyperIDClient(base_url=server.url)
    transaction_id = client.start_transaction(token, question="Withdraw?", code="12")
    before = server.connections_accepted
    for _ in range(50):
        assert client.get_transaction_status(token, transaction_id).is_pending
    assert server.connections_accepted - before <= 2
    assert fake.call_count("status-get") == 50


def test_keep_alive_calls_do_not_stall(served):
    """Regression guard for the Nagle/delayed-ACK trap: a server that answers in two
    writes without TCP_NODELAY stalls *every* keep-alive call by the delayed ACK
    (40 ms on Linux). The fastest of 50 calls catches that however loaded the machine
    is: load slows some calls, the trap slows all of them. (Timings: benchmarks/.)"""
    _fake, server, token = served
    client = HyperIDClient(base_url=server.url)
    transaction_id = client.start_transaction(token, question="Withdraw?", code="12")
    durations = []
    for _ in range(50):
        started = time.perf_counter()
        client.get_transaction_status(token, transaction_id)
        durations.append(time.perf_counter() - started)
    assert min(durations) < 0.035, f"every keep-alive call took 35 ms or more: {durations}"


def test_a_server_slower_than_the_read_timeout_is_unavailable_after_retries(served):
    fake, server, token = served
    client = HyperIDClient(base_url=server.url, timeout=(1, 0.2), max_retries=1)
    transaction_id = client.start_transaction(token, question="Withdraw?", code="12")
    fake.inject("delay", call="status-get", times=2, seconds=1)
    with pytest.raises(ServiceUnavailable, match="timed out"):
        client.get_transaction_status(token, transaction_id)
    assert fake.call_count("status-get") == 2


def test_a_dropped_connection_is_retried_on_a_fresh_one(served):
    fake, server, token = served
    client = HyperIDClient(base_url=server.url)
    transaction_id = client.start_transaction(token, question="Withdraw?", code="12")
    fake.inject("connection_error", call="status-get")
    assert client.get_transaction_status(token, transaction_id).is_pending


def test_nothing_listening_is_unavailable():
    fake = FakeHyperID(base_url=None)
    with fake.serve() as server:
        url = server.url
    client = HyperIDClient(base_url=url, timeout=(0.5, 0.5), max_retries=1)
    with pytest.raises(ServiceUnavailable, match="could not be reached"):
        client.get_transaction_status("a.b.c", 1)
