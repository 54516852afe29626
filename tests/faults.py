"""Services that fail on cue, for tests/test_dependencies.py.

- :class:`TCPProxy`: a port in front of a real server (Redis) that forwards, refuses
  connections (the server down or restarting) or accepts and never answers (the
  server hung, a black-holed network), switched while a test runs. The app keeps
  one ``CACHES`` setting throughout, as it would while Redis restarts.
- :class:`FlakyCache`: Django's local-memory cache whose chosen operations raise
  redis-py's errors, for failures at one exact step.
- :func:`closed_port`: a port on which nothing listens.
- PostgreSQL: :func:`locked_elsewhere` holds a row's lock in another connection, and
  :func:`killed_when_waiting` terminates this thread's connection
  (``pg_terminate_backend``) the moment it waits for a lock, which pins the kill to
  one statement of a request.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.db import connection, transaction

#: Seconds a helper waits for the other side before it fails the test.
WAIT = 10


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TCPProxy:
    """A loopback port forwarding to ``target``: :meth:`up`, :meth:`down`, :meth:`hang`.

    Every switch drops the connections open so far, as a restarting server does.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = closed_port()
        self.mode = "down"
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def up(self) -> None:
        self._switch("up")

    def hang(self) -> None:
        self._switch("hang")

    def down(self) -> None:
        self._switch("down")

    def _switch(self, mode: str) -> None:
        with self._lock:
            self.mode = mode
            dropped, self._sockets = self._sockets, []
            listener = self._listener
            if mode == "down":
                self._listener = None
        for sock in dropped:
            _close(sock)
        if mode == "down" and listener is not None:
            _close(listener)
        elif mode != "down" and listener is None:
            self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            with self._lock:
                if self._listener is not listener:
                    return
            try:
                client, _address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                mode = self.mode
                self._sockets.append(client)
            if mode == "up":
                self._forward(client)
            # "hang": the connection is accepted and never read or answered.

    def _forward(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=WAIT)
        except OSError:
            _close(client)
            return
        server.settimeout(None)
        with self._lock:
            self._sockets.append(server)
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self.down()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class FlakyCache(LocMemCache):
    """The local-memory cache, whose operations named in ``FAILING`` raise redis-py's
    ``TimeoutError`` (after doing their work, where ``AFTER`` names them too: the
    server did it, its answer was lost)."""

    FAILING: set[str] = set()
    AFTER: set[str] = set()

    def _maybe_fail(self, operation: str, call: Callable[[], Any]) -> Any:
        if operation not in self.FAILING:
            return call()
        if operation in self.AFTER:
            call()
        import redis

        raise redis.exceptions.TimeoutError("Timeout reading from 127.0.0.1:6379")

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return self._maybe_fail("add", lambda: super(FlakyCache, self).add(*args, **kwargs))

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._maybe_fail("get", lambda: super(FlakyCache, self).get(*args, **kwargs))

    def get_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._maybe_fail(
            "get_many", lambda: super(FlakyCache, self).get_many(*args, **kwargs)
        )

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._maybe_fail("delete", lambda: super(FlakyCache, self).delete(*args, **kwargs))


# --- PostgreSQL: a connection killed at one statement ------------------------------------------


def backend_pid() -> int:
    """The PostgreSQL backend of this thread's connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return int(pid)


@contextlib.contextmanager
def locked_elsewhere(lock: Callable[[], None], *, when: threading.Event | None = None):
    """Another connection runs ``lock`` in a transaction and keeps it open until the
    block ends: at once, or from the moment ``when`` is set."""
    ready, taken, release = when or threading.Event(), threading.Event(), threading.Event()
    if when is None:
        ready.set()
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            if not ready.wait(timeout=WAIT * 3):
                return
            with transaction.atomic():
                lock()
                taken.set()
                release.wait(timeout=WAIT * 3)
        except BaseException as err:
            failures.append(err)
            taken.set()
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        if when is None:
            assert taken.wait(timeout=WAIT)
            assert failures == []
        yield taken
    finally:
        ready.set()
        release.set()
        holder.join(timeout=WAIT * 3)
    assert failures == []


@contextlib.contextmanager
def killed_when_waiting(pid: int) -> Iterator[list[int]]:
    """Terminate the backend ``pid`` as soon as it waits for a lock; the list holds
    ``pid`` once it was killed."""
    killed: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        try:
            deadline = time.monotonic() + WAIT * 3
            while not stop.is_set() and time.monotonic() < deadline:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]
                    )
                    row = cursor.fetchone()
                    if row is not None and row[0] == "Lock":
                        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
                        killed.append(pid)
                        return
                time.sleep(0.01)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield killed
    finally:
        stop.set()
        watcher.join(timeout=WAIT * 3)
