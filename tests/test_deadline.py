"""Every HyperID attempt ends within connect + read seconds, however the answer trickles.

requests applies its read timeout to each socket read, so a server that sends one byte
every half second never trips it. These tests talk to such servers over real sockets
on loopback, plain and TLS. Timings are asserted with generous bounds only.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import ssl
import threading
import time

import pytest
import requests
from requests.adapters import HTTPAdapter

from hyperid_mfa.client import deadline as deadline_module
from hyperid_mfa.client.calls import HyperIDClient
from hyperid_mfa.exceptions import ServiceUnavailable
from hyperid_mfa.testing import FakeHyperID
from tests.conftest import import_or_skip

trustme = import_or_skip("trustme")

TOKEN = "eyJhbGciOi.dGVzdA.c2lnbmF0dXJl"
# One byte every INTERVAL: each read returns well within the 1 s read timeout.
INTERVAL = 0.3
# A server gives up trickling after this long, so that a client without a deadline
# fails these tests in seconds rather than minutes.
TRICKLE_CAP = 20.0
# TIMEOUT (1, 1): the deadline is 2 s. A client without one reads until the server
# stops trickling (TRICKLE_CAP); the bound, halfway, leaves a loaded machine 8 s.
BOUND = 10.0

START_BODY = b'{"result": 0, "transaction_id": 5}'
STATUS_BODY = b'{"result": 0, "transaction_id": 5, "transaction_status": 0}'
TOKEN_BODY = b'{"access_token": "eyJhbGciOi.bmV3.c2ln", "expires_in": 300}'


class TrickleServer:
    """An HTTP/1.1 server on loopback that answers slowly, one byte at a time.

    ``modes`` says, request by request, what to trickle: ``"head"`` (status line and
    headers), ``"body"``, nothing (``"ok"``, answered at once; the last mode repeats),
    or ``"handshake"``, which never speaks TLS but drips an endless TLS record instead.
    """

    def __init__(
        self, *modes: str, body: bytes = START_BODY, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.modes = list(modes)
        self.body = body
        self.ssl_context = ssl_context
        self.requests = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._spawn(self._accept)

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._sockets.append(connection)
            self._spawn(self._serve, connection)

    def _next_mode(self) -> str:
        with self._lock:
            self.requests += 1
            return self.modes.pop(0) if len(self.modes) > 1 else self.modes[0]

    def _serve(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError), connection:
            connection.settimeout(TRICKLE_CAP)
            if self.modes[0] == "handshake":
                connection.recv(4096)  # the ClientHello
                self._next_mode()
                # A handshake record announcing 16 KiB, which never comes.
                self._trickle(connection, b"\x16\x03\x03\x40\x00" + b"\x00" * 200)
                return
            if self.ssl_context is not None:
                connection = self.ssl_context.wrap_socket(connection, server_side=True)
                with self._lock:
                    self._sockets.append(connection)
            with connection:
                self._answer(connection)

    def _answer(self, connection: socket.socket) -> None:
        with connection.makefile("rb") as reader:
            while not self._stopping.is_set():
                length = self._read_request(reader)
                if length is None:
                    return
                reader.read(length)
                mode = self._next_mode()
                head = (
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(self.body)}\r\n\r\n"
                ).encode()
                if mode == "head":
                    if not self._trickle(connection, head):
                        return
                    connection.sendall(self.body)
                elif mode == "body":
                    connection.sendall(head)
                    if not self._trickle(connection, self.body):
                        return
                else:
                    connection.sendall(head + self.body)

    @staticmethod
    def _read_request(reader) -> int | None:
        length = 0
        while True:
            line = reader.readline()
            if not line:
                return None
            if line in (b"\r\n", b"\n"):
                return length
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)

    def _trickle(self, connection: socket.socket, data: bytes) -> bool:
        """Send ``data`` a byte at a time; False once the cap or stop() cut it short."""
        started = time.monotonic()
        for index in range(len(data)):
            if time.monotonic() - started > TRICKLE_CAP or self._stopping.wait(INTERVAL):
                return False
            connection.sendall(data[index : index + 1])
        return True

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> tuple[ssl.SSLContext, str]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return context, str(bundle)


@pytest.fixture(params=["http", "https"])
def scheme(request) -> str:
    return request.param


@pytest.fixture
def serve(scheme, tls, monkeypatch):
    """Start TrickleServers; the client that talks to them trusts the test CA."""
    context, bundle = tls
    servers: list[TrickleServer] = []
    # The client's own session: requests takes the CA bundle from the environment.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)

    def start(*modes: str, body: bytes = START_BODY) -> TrickleServer:
        server = TrickleServer(
            *modes, body=body, ssl_context=context if scheme == "https" else None
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def timed(function, *args, **kwargs) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        function(*args, **kwargs)
    except Exception as err:
        return err, time.monotonic() - started
    return None, time.monotonic() - started


# --- the deadline ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("trickled", ["head", "body"])
def test_a_trickled_start_answer_is_cut_at_the_deadline_and_not_retried(serve, trickled):
    server = serve(trickled)
    client = HyperIDClient(base_url=server.url, timeout=(1, 1), max_retries=2)
    error, elapsed = timed(client.start_transaction, TOKEN, question="Pay?", code="12")
    assert isinstance(error, ServiceUnavailable)
    assert "timed out" in str(error)
    assert elapsed < BOUND
    # The push may have been sent: a blind retry could send a second one.
    assert server.requests == 1


@pytest.mark.slow
@pytest.mark.parametrize("trickled", ["head", "body"])
def test_a_trickled_status_answer_is_cut_at_the_deadline(serve, trickled):
    server = serve(trickled, body=STATUS_BODY)
    client = HyperIDClient(base_url=server.url, timeout=(1, 1), max_retries=0)
    error, elapsed = timed(client.get_transaction_status, TOKEN, 5)
    assert isinstance(error, ServiceUnavailable)
    assert "timed out" in str(error)
    assert elapsed < BOUND


@pytest.mark.slow
def test_an_idempotent_call_cut_by_the_deadline_is_retried_on_a_fresh_connection(serve):
    server = serve("body", "ok", body=STATUS_BODY)
    client = HyperIDClient(base_url=server.url, timeout=(1, 1), max_retries=1)
    started = time.monotonic()
    assert client.get_transaction_status(TOKEN, 5).is_pending
    assert time.monotonic() - started < BOUND
    assert server.requests == 2
    # The pool did not keep the connection the deadline cut.
    assert client.get_transaction_status(TOKEN, 5).is_pending


@pytest.mark.slow
def test_a_trickled_token_endpoint_answer_is_cut_at_the_deadline(serve):
    server = serve("body", body=TOKEN_BODY)
    client = HyperIDClient(base_url=server.url, timeout=(1, 1))
    error, elapsed = timed(
        client.refresh_access_token, "r1", client_secret="s", token_url=server.url + "/token"
    )
    assert isinstance(error, ServiceUnavailable)
    assert "timed out" in str(error)
    assert elapsed < BOUND
    assert server.requests == 1


@pytest.mark.slow
def test_a_trickled_tls_handshake_is_cut_at_the_deadline(tls, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls[1])
    server = TrickleServer("handshake")
    try:
        client = HyperIDClient(base_url=f"https://127.0.0.1:{server.port}", timeout=(1, 1))
        error, elapsed = timed(client.start_transaction, TOKEN, question="Pay?", code="12")
    finally:
        server.stop()
    assert isinstance(error, ServiceUnavailable)
    assert "timed out" in str(error)
    assert elapsed < BOUND
    assert server.requests == 1


@pytest.mark.slow
def test_an_integrators_session_gets_the_deadline_too(serve, scheme, tls):
    server = serve("body", body=STATUS_BODY)
    session = requests.Session()
    session.verify = tls[1]
    client = HyperIDClient(base_url=server.url, timeout=(1, 1), max_retries=0, session=session)
    error, elapsed = timed(client.get_transaction_status, TOKEN, 5)
    assert isinstance(error, ServiceUnavailable)
    assert elapsed < BOUND


# --- sessions, pooling and what each call leaves behind --------------------------------------


def test_the_deadline_adapter_is_mounted_for_the_base_url_only():
    fake = FakeHyperID(base_url=None)
    with fake.serve() as server, requests.Session() as session:
        token = fake.issue_tokens(fake.add_user()).access_token
        client = HyperIDClient(base_url=server.url, session=session)
        assert client.check_availability(token)
        mounted = session.get_adapter(server.url + "/mfa-client/availability-check")
        assert type(mounted) is not HTTPAdapter
        assert isinstance(mounted, HTTPAdapter)
        assert type(session.get_adapter("http://elsewhere.example/")) is HTTPAdapter
        # The same origin on another port is another server.
        assert type(session.get_adapter(server.url + "0/")) is HTTPAdapter
        assert client.check_availability(token)
        assert session.get_adapter(server.url + "/") is mounted


@pytest.mark.parametrize(
    "adapter",
    [
        pytest.param(lambda: type("Custom", (HTTPAdapter,), {})(), id="subclass"),
        pytest.param(lambda: HTTPAdapter(max_retries=3), id="configured"),
        pytest.param(lambda: HTTPAdapter(pool_maxsize=50), id="configured-pool"),
    ],
)
def test_an_adapter_the_integrator_mounted_on_purpose_is_kept(adapter):
    fake = FakeHyperID(base_url=None)
    with fake.serve() as server, requests.Session() as session:
        token = fake.issue_tokens(fake.add_user()).access_token
        mine = adapter()
        session.mount("http://", mine)
        client = HyperIDClient(base_url=server.url, session=session)
        assert client.check_availability(token)
        assert session.get_adapter(server.url + "/") is mine


def test_an_adapter_mounted_for_the_base_url_itself_is_kept():
    fake = FakeHyperID(base_url=None)
    with fake.serve() as server, requests.Session() as session:
        token = fake.issue_tokens(fake.add_user()).access_token
        mine = HTTPAdapter()
        session.mount(server.url + "/", mine)
        client = HyperIDClient(base_url=server.url, session=session)
        assert client.check_availability(token)
        assert session.get_adapter(server.url + "/") is mine


def _open_descriptors() -> int | None:
    with contextlib.suppress(OSError):
        return len(os.listdir("/proc/self/fd"))
    return None


@pytest.mark.parametrize("use_tls", [False, True], ids=["http", "https"])
def test_two_hundred_calls_leave_no_thread_or_socket_behind(use_tls, tls, monkeypatch):
    context, bundle = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    fake = FakeHyperID(base_url=None)
    with fake.serve(ssl_context=context if use_tls else None) as server:
        token = fake.issue_tokens(fake.add_user()).access_token
        client = HyperIDClient(base_url=server.url)
        transaction_id = client.start_transaction(token, question="Pay?", code="12")
        client.get_transaction_status(token, transaction_id)  # warm: pool, watchdog
        gc.collect()  # sockets of earlier tests' clients, which would close mid-count
        threads, descriptors = threading.active_count(), _open_descriptors()
        accepted = server.connections_accepted
        for _ in range(200):
            assert client.get_transaction_status(token, transaction_id).is_pending
        # Not equality: a thread or socket of an earlier test may end meanwhile.
        assert threading.active_count() <= threads
        if descriptors is not None:
            assert _open_descriptors() <= descriptors
        assert server.connections_accepted == accepted
        client.close()


def test_concurrent_calls_sharing_a_pool_all_succeed():
    # Deadlines of calls running side by side never cut a connection another call
    # took from the pool after them.
    fake = FakeHyperID(base_url=None)
    with fake.serve() as server:
        token = fake.issue_tokens(fake.add_user()).access_token
        client = HyperIDClient(base_url=server.url, timeout=(1, 2), max_retries=0)
        transaction_id = client.start_transaction(token, question="Pay?", code="12")
        failures: list[BaseException] = []

        def poll() -> None:
            for _ in range(40):
                try:
                    client.get_transaction_status(token, transaction_id)
                except Exception as err:
                    failures.append(err)

        threads = [threading.Thread(target=poll) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []


def test_the_watchdog_thread_ends_when_idle_and_comes_back(monkeypatch):
    monkeypatch.setattr(deadline_module, "WATCHDOG_IDLE_SECONDS", 0.05)
    fake = FakeHyperID(base_url=None)
    with fake.serve() as server:
        token = fake.issue_tokens(fake.add_user()).access_token
        # The watchdog wakes at the last deadline (0.2 s), then idles out.
        client = HyperIDClient(base_url=server.url, timeout=(0.1, 0.1))
        assert client.check_availability(token)
        assert _wait_until(lambda: not _watchdog_threads())
        assert client.check_availability(token)
        # Its own deadline keeps the new thread up for 0.2 s: well after the call.
        assert len(_watchdog_threads()) == 1
        client.close()


def _watchdog_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "hyperid-mfa-deadlines"]


def _wait_until(condition, timeout: float = 5.0) -> bool:
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# --- the mechanism: shutting a connection down through a descriptor of its own ---------------


def test_an_expired_deadline_wakes_a_read_blocked_on_a_watched_socket():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        deadline = deadline_module.Deadline(60)
        connection = object()
        deadline.watch(connection, ours)
        timer = threading.Timer(0.2, deadline.expire)
        timer.start()
        started = time.monotonic()
        ours.settimeout(10)
        assert ours.recv(1) == b""  # woken at once, as at the end of the stream
        # 0.2 s expected; unwoken, the read would wait for its 10 s timeout.
        assert time.monotonic() - started < 5
        timer.join()
        deadline.finish()


def test_a_released_connection_is_never_shut_down_by_the_deadline_it_left():
    # Released as it goes back to the pool: another attempt may be using it when
    # this deadline passes.
    ours, theirs = socket.socketpair()
    with ours, theirs:
        deadline = deadline_module.Deadline(60)
        connection = object()
        deadline.watch(connection, ours)
        deadline.release(connection)
        deadline.expire()
        theirs.sendall(b"x")
        ours.settimeout(5)
        assert ours.recv(1) == b"x"
        ours.sendall(b"y")
        assert theirs.recv(1) == b"y"
        deadline.finish()


def test_a_finished_deadline_closes_its_descriptors_and_watches_nothing_more():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        descriptors = _open_descriptors()
        deadline = deadline_module.Deadline(60)
        deadline.watch(object(), ours)
        deadline.finish()
        if descriptors is not None:
            assert _open_descriptors() == descriptors
        deadline.watch(object(), ours)  # too late: not kept
        deadline.expire()
        theirs.sendall(b"x")
        ours.settimeout(5)
        assert ours.recv(1) == b"x"
