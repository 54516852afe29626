"""A hard deadline for each HTTP exchange with HyperID, whatever the server does.

requests applies its read timeout to each socket read, so an answer trickled a byte
at a time would hold a call for minutes. Each attempt of the client runs inside
:func:`deadline` (connect + read seconds); the connections it uses are registered by
the pools of :class:`DeadlineAdapter`, and one watchdog thread per process shuts them
down when the deadline passes, which ends a read blocked on them at once.

Used by :mod:`hyperid_mfa.client` only. A session sending through another adapter
gets the client's per-chunk check of the body, not the hard deadline.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE, HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager
from urllib3.util.retry import Retry

#: A watchdog thread with no deadline to watch for this long ends (a new one starts
#: with the next call), so an idle process keeps no thread for this module.
WATCHDOG_IDLE_SECONDS = 30.0


#: The deadline of the attempt running in this thread (or task); the pools read it.
current_deadline: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "hyperid_mfa_deadline", default=None
)


class Deadline:
    """When one attempt must be over; past it, every connection it uses is shut down.

    ``shutdown()`` on a socket makes a read blocked on it in another thread return at
    once (``close()`` would not). Each connection is shut down through a duplicate of
    its descriptor that this object owns: urllib3 may close the connection's own
    socket at any moment, and a descriptor number closed in one thread can belong to
    another connection by the time a shutdown from the watchdog lands. A duplicate
    also reaches the connection while ``ssl`` swaps its socket object for a TLS one.
    """

    __slots__ = ("_done", "_handles", "_lock", "at", "budget", "expired")

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.at = time.monotonic() + budget
        #: Set by the watchdog when it shut the connections down.
        self.expired = False
        self._done = False
        self._lock = threading.Lock()
        self._handles: dict[object, list[socket.socket]] = {}

    @property
    def done(self) -> bool:
        return self._done

    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self.at

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def watch(self, connection: object, sock: object) -> None:
        """Shut ``sock`` down at the deadline, until ``release(connection)`` or ``finish()``."""
        handle = _duplicate(sock)
        if handle is None:
            return
        with self._lock:
            if not self._done:
                self._handles.setdefault(connection, []).append(handle)
                if self.expired:
                    _shutdown(handle)
                return
        handle.close()

    def release(self, connection: object) -> None:
        """Stop watching ``connection``: it goes back to the pool, for another attempt."""
        with self._lock:
            handles = self._handles.pop(connection, [])
        for handle in handles:
            handle.close()

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for handles in self._handles.values():
                for handle in handles:
                    _shutdown(handle)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            handles = [handle for group in self._handles.values() for handle in group]
            self._handles.clear()
        for handle in handles:
            handle.close()


def _duplicate(sock: object) -> socket.socket | None:
    # urllib3's SSLTransport (TLS inside a TLS proxy tunnel) is not a socket: unwatched.
    if not isinstance(sock, socket.socket):
        return None
    try:
        return socket.fromfd(sock.fileno(), sock.family, sock.type, sock.proto)
    except OSError:  # already closed
        return None


def _shutdown(handle: socket.socket) -> None:
    with contextlib.suppress(OSError):
        handle.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """Expires deadlines from one daemon thread, started on demand, gone when idle.

    One thread for the process rather than a timer per attempt: an attempt costs a
    heap push, not a thread.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Deadline]] = []
        self._sequence = itertools.count()
        self._thread: threading.Thread | None = None
        self._finished = 0

    def arm(self, deadline: Deadline) -> None:
        with self._condition:
            heapq.heappush(self._heap, (deadline.at, next(self._sequence), deadline))
            if self._thread is None or not self._thread.is_alive():
                thread = threading.Thread(
                    target=self._run, name="hyperid-mfa-deadlines", daemon=True
                )
                try:
                    thread.start()
                except RuntimeError:  # interpreter shutting down: body checks only
                    return
                self._thread = thread
            elif self._heap[0][2] is deadline:
                self._condition.notify()

    def forget(self) -> None:
        """Drop finished deadlines: those on top at once, all once they are most of the heap."""
        with self._condition:
            self._finished += 1
            while self._heap and self._heap[0][2].done:
                heapq.heappop(self._heap)
                self._finished -= 1
            if self._finished > 64 and self._finished * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)
                self._finished = 0

    def _run(self) -> None:
        with self._condition:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    deadline = heapq.heappop(self._heap)[2]
                    if deadline.done:
                        self._finished = max(0, self._finished - 1)
                    else:
                        deadline.expire()
                if self._heap:
                    self._condition.wait(self._heap[0][0] - now)
                elif not self._condition.wait(WATCHDOG_IDLE_SECONDS) and not self._heap:
                    self._thread = None
                    return


watchdog = _Watchdog()
if hasattr(os, "register_at_fork"):
    # A forked child (a prefork worker) has no watchdog thread, and maybe a lock
    # taken in the parent at the moment of the fork.
    os.register_at_fork(after_in_child=watchdog._reset)


def _watched_new_conn(
    connection: HTTPConnection, new_conn: Callable[[], socket.socket]
) -> socket.socket:
    deadline = current_deadline.get()
    if deadline is None:
        return new_conn()
    if isinstance(connection.timeout, (int, float)):
        # The connect timeout, not the deadline, bounds connect(), which no shutdown
        # can interrupt (the socket is not ours yet): keep it within what is left.
        connection.timeout = min(connection.timeout, max(deadline.remaining(), 0.001))
    sock = new_conn()
    deadline.watch(connection, sock)
    return sock


class _DeadlineHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _watched_new_conn(self, super()._new_conn)


class _DeadlineHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        # Watched before the TLS handshake, which the deadline covers too.
        return _watched_new_conn(self, super()._new_conn)


def _watch_pooled(connection: Any) -> Any:
    deadline = current_deadline.get()
    if deadline is not None:
        # A connection reused from the pool: _new_conn() is not called for it.
        sock = getattr(connection, "sock", None)
        if sock is not None:
            deadline.watch(connection, sock)
    return connection


def _release_pooled(connection: object) -> None:
    deadline = current_deadline.get()
    if deadline is not None and connection is not None:
        # Before the connection is back in the pool, where another thread may take it:
        # this attempt's deadline must never shut down that thread's request.
        deadline.release(connection)


class _DeadlineHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        return _watch_pooled(super()._get_conn(timeout))

    def _put_conn(self, conn: Any) -> None:
        _release_pooled(conn)
        super()._put_conn(conn)


class _DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        return _watch_pooled(super()._get_conn(timeout))

    def _put_conn(self, conn: Any) -> None:
        _release_pooled(conn)
        super()._put_conn(conn)


_DEADLINE_POOL_CLASSES: dict[str, type[HTTPConnectionPool]] = {
    "http": _DeadlineHTTPConnectionPool,
    "https": _DeadlineHTTPSConnectionPool,
}


class DeadlineAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections are watched by the attempt's deadline.

    Outside an attempt of this client (no deadline set) it behaves as its base class.
    ``responses`` (``FakeHyperID.mock()``) patches ``HTTPAdapter.send``, which this
    class inherits: mocked calls never reach the pools.
    """

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = DEFAULT_POOLBLOCK, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _DEADLINE_POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # SOCKS managers have pools of their own; they keep them (and no hard deadline).
        if isinstance(manager, ProxyManager):
            manager.pool_classes_by_scheme = _DEADLINE_POOL_CLASSES
        return manager


def uses_stock_adapter(session: requests.Session, url: str) -> bool:
    """Whether ``session`` would send ``url`` through an adapter nobody chose.

    That is the ``HTTPAdapter()`` that ``requests.Session()`` mounts for the bare
    scheme, with its default pool and retry settings; anything else was mounted or
    configured on purpose.
    """
    adapters = session.adapters
    prefix = next((key for key in adapters if url.lower().startswith(key.lower())), None)
    if prefix is None:
        return False
    adapter = adapters[prefix]
    if prefix.lower() not in ("http://", "https://") or type(adapter) is not HTTPAdapter:
        return False
    return (
        getattr(adapter, "_pool_connections", None) == DEFAULT_POOLSIZE
        and getattr(adapter, "_pool_maxsize", None) == DEFAULT_POOLSIZE
        and getattr(adapter, "_pool_block", None) == DEFAULT_POOLBLOCK
        and vars(adapter.max_retries) == vars(Retry(0, read=False))
    )


def origin_prefix(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/".lower()


def with_adapter(
    adapters: Mapping[str, Any], prefix: str, adapter: HTTPAdapter
) -> OrderedDict[str, Any]:
    """``adapters`` plus ``adapter`` at ``prefix``, longest prefixes first as mount() keeps them."""
    merged = OrderedDict(adapters)
    merged[prefix] = adapter
    for key in [key for key in merged if len(key) < len(prefix)]:
        merged.move_to_end(key)
    return merged


@contextlib.contextmanager
def deadline(budget: float | Deadline) -> Iterator[Deadline]:
    """Run one exchange within ``budget`` seconds (or by a :class:`Deadline` made
    earlier, which another thread may then expire at once): its connections are shut
    down after."""
    current = budget if isinstance(budget, Deadline) else Deadline(budget)
    context = current_deadline.set(current)
    watchdog.arm(current)
    try:
        yield current
    finally:
        current.finish()
        watchdog.forget()
        current_deadline.reset(context)


def mount_if_stock(session: requests.Session, url: str, make: Callable[[], HTTPAdapter]) -> None:
    """Mount ``make()`` on ``session`` for ``url``'s origin, where the session would
    otherwise send through the stock adapter nobody chose."""
    if uses_stock_adapter(session, url):
        # A new mapping swapped in whole, not Session.mount(): other threads may be
        # iterating over the session's adapters at this moment.
        session.adapters = with_adapter(session.adapters, origin_prefix(url), make())
