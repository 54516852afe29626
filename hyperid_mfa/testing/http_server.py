"""The HTTP transport behind :meth:`FakeHyperID.serve`: a real server on a socket.

For the demo, integration tests and benchmarks: the app's real HTTP client talks to
it over loopback exactly as it would talk to HyperID (over plain HTTP, or over TLS
when given an ``ssl.SSLContext``). It carries bytes only: each request's answer
comes from a :data:`Handler`, ``fake.handle`` unless another is given.

Whatever answers carries the ``/_fake/`` control endpoints (see :mod:`.control`),
which have no authentication: bind to loopback only (the default).
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Mapping
from http import HTTPStatus
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar, cast

from .responses import FakeResponse, Handler

__all__ = ["MAX_BODY_BYTES", "FakeHyperIDServer", "Handler"]

#: Longest request body the server reads; HyperID's bodies are a few hundred bytes.
MAX_BODY_BYTES = 1024 * 1024


class _Fake(Protocol):
    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> FakeResponse: ...


# The server is generic in its fake so that ``server.fake`` keeps the fake's own type
# without this module importing fake.py, which imports this one for serve().
_FakeT = TypeVar("_FakeT", bound=_Fake)

# How often the accept loop looks at its shutdown flag: stop() waits at most this long.
_POLL_INTERVAL = 0.05
# A TLS client that connects and says nothing gives up its thread after this long.
_HANDSHAKE_TIMEOUT = 10.0
# Headers the server writes itself; a FakeResponse cannot override the framing.
_FRAMING_HEADERS = frozenset(
    {"content-length", "connection", "transfer-encoding", "date", "server"}
)


class FakeHyperIDServer(Generic[_FakeT]):
    """A running HTTP server answering with a :class:`FakeHyperID`; made by ``fake.serve()``.

    Starts on construction and serves from a daemon thread, one thread per
    connection, HTTP/1.1 keep-alive. ``url`` is ``http://HOST:PORT`` (loopback when
    bound to all interfaces). ``connections_accepted`` and ``requests_handled`` let
    a test prove that a client reuses connections; ``latency`` (settable) delays
    every answer, for benchmarks. ``stop()`` (or leaving the ``with`` block) returns
    promptly even with idle keep-alive connections or slow answers in flight.
    ``handler`` answers each request instead of ``fake.handle`` (the simulator's
    authenticator pages answer their own paths and pass the rest on to the fake).
    ``ssl_context`` (a server-side ``ssl.SSLContext`` holding a certificate) serves
    HTTPS instead, and ``url`` then starts with ``https://``; the TLS handshake runs
    in the connection's own thread, so a slow client never holds up the others.
    """

    def __init__(
        self,
        fake: _FakeT,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        handler: Handler | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.fake = fake
        self.ssl_context = ssl_context
        self.handler: Handler = fake.handle if handler is None else handler
        self.latency = latency
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = False
        self._connections: set[socket.socket] = set()
        self._connections_accepted = 0
        self._requests_handled = 0
        #: Exceptions raised while answering (bugs in the fake): tests may assert it stays empty.
        self.errors: list[BaseException] = []
        self._httpd = _HTTPServer((host, port), self)
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"FakeHyperIDServer:{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL to reach the server, e.g. ``http://127.0.0.1:54321``."""
        scheme = "http" if self.ssl_context is None else "https"
        host = self.host
        if host in ("", "0.0.0.0"):  # noqa: S104 - maps the wildcard to a reachable address
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return (
            f"{scheme}://[{host}]:{self.port}" if ":" in host else f"{scheme}://{host}:{self.port}"
        )

    @property
    def latency(self) -> float:
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be non-negative")
        self._latency = float(seconds)

    @property
    def connections_accepted(self) -> int:
        with self._lock:
            return self._connections_accepted

    @property
    def requests_handled(self) -> int:
        """Requests the fake answered (counted before the answer is written)."""
        with self._lock:
            return self._requests_handled

    @property
    def running(self) -> bool:
        return not self._stopping.is_set()

    def stop(self) -> None:
        """Stop serving and close every open connection; idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        # Wakes handlers sleeping on latency, delay or timeout faults.
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            # shutdown(), unlike close(), wakes a handler thread blocked in recv().
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeHyperIDServer[_FakeT]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<FakeHyperIDServer {self.url} {state}>"

    # Called from server threads.

    def _opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections_accepted += 1
            self._connections.add(connection)
        if self._stopping.is_set():
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _handled(self) -> None:
        with self._lock:
            self._requests_handled += 1

    def _error(self, error: BaseException) -> None:
        with self._lock:
            self.errors.append(error)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: FakeHyperIDServer[Any]) -> None:
        self.owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() resolves the host's FQDN, which can stall for
        # seconds on machines with slow DNS; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        # Without TCP_NODELAY, keep-alive answers stall ~40 ms (Nagle vs delayed ACK).
        with contextlib.suppress(OSError):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        context = self.owner.ssl_context
        if context is not None:
            # The handshake waits for the handler's thread (_Handler.setup): done here,
            # in the accept loop, one slow or silent client would stall every other.
            connection = context.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        self.owner._opened(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        self.owner._closed(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        # A client that went away, or stop() closing its socket, is not worth a traceback.
        if error is not None and not isinstance(error, OSError):
            self.owner._error(error)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHyperID"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: test output and the demo's console stay clean."""

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_POST

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            # A failed handshake raises ssl.SSLError (an OSError): handle_error drops it
            # quietly and the connection is closed, as a real server would.
            self.request.settimeout(_HANDSHAKE_TIMEOUT)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()

    @property
    def _owner(self) -> FakeHyperIDServer[Any]:
        return cast(_HTTPServer, self.server).owner

    def _serve(self) -> None:
        owner = self._owner
        if "transfer-encoding" in self.headers:
            # HyperID's clients send Content-Length; chunked bodies are not worth parsing here.
            self.close_connection = True
            self._write(_plain(411, "Content-Length required"))
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._write(_plain(400 if length < 0 else 413, "bad Content-Length"))
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True
            return
        try:
            response = owner.handler(self.command, self.path, dict(self.headers.items()), body)
        except Exception as error:  # a bug in the fake: answer and let the test see it in .errors
            owner._error(error)
            response = _plain(500, "FakeHyperID failed; see FakeHyperIDServer.errors")
        owner._handled()
        wait = owner.latency + response.delay
        if wait > 0 and owner._stopping.wait(wait):
            self.close_connection = True
            return
        if response.disconnect:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._write(response)

    def _write(self, response: FakeResponse) -> None:
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [
            f"{self.protocol_version} {response.status} {phrase}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
        ]
        lines.extend(
            f"{k}: {v}" for k, v in response.headers.items() if k.lower() not in _FRAMING_HEADERS
        )
        lines.append(f"Content-Length: {len(response.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write: headers and body in separate segments trigger the Nagle/delayed-ACK stall.
        self.connection.sendall(head if self.command == "HEAD" else head + response.body)


def _plain(status: int, text: str) -> FakeResponse:
    return FakeResponse(status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode("utf-8"))
