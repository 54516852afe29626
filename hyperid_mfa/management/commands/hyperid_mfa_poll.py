"""``manage.py hyperid_mfa_poll``: follow pending MFA requests without a browser open.

One pass by default (for cron or a Kubernetes CronJob); ``--loop`` keeps polling
(for a supervised process). Several pollers, on one host or many, may run at once:
``services.refresh_pending`` claims rows with ``SELECT ... FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections

from hyperid_mfa import services

#: The HTTP client keeps 32 connections per host: more threads would open connections
#: only for the pool to drop them. Each thread also holds a database connection.
MAX_CONCURRENCY = 32
DEFAULT_INTERVAL = 2.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def _concurrency(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"{value} is more than {MAX_CONCURRENCY}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _drop_stale_connections() -> None:
    """Between rounds, what Django's request cycle does for views (close_old_connections).

    A long-running poller must not keep a connection the database dropped, nor one
    older than CONN_MAX_AGE. Connections inside a transaction the caller opened are
    left alone: closing one would end that transaction.
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


class _StopRequest:
    """A stop flag that a signal handler may set.

    Not a ``threading.Event``: its ``set()`` takes a lock, and a handler that runs
    while the main thread holds that same lock (inside ``Event.wait``) would wait
    for it forever. Setting an attribute takes no lock; ``wait`` sleeps in short
    slices and looks at the flag between them.
    """

    SLICE = 0.2

    def __init__(self) -> None:
        self.requested = False

    def set(self) -> None:
        self.requested = True

    def is_set(self) -> bool:
        return self.requested

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.requested and (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(self.SLICE, remaining))


@contextmanager
def _stop_on_signals(stop: _StopRequest) -> Iterator[list[str]]:
    """Turn the first SIGTERM/SIGINT into ``stop``; a second one acts as usual.

    Yields the names of the signals received. Signal handlers can be installed only
    from the main thread; elsewhere (the command called from a thread) the process's
    own handling is left alone.
    """
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous: dict[signal.Signals, Any] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        # Only set flags here: writing to stdout from a handler can re-enter a write
        # the main thread was in the middle of.
        received.append(signal.Signals(signum).name)
        stop.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    for sig in _STOP_SIGNALS:
        previous[sig] = signal.signal(sig, handle)
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Command(BaseCommand):
    help = (
        "Ask HyperID about the pending MFA requests that are due, in one pass or, with "
        "--loop, until stopped. SIGTERM or Ctrl-C stops it after the current round."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit",
            type=_positive_int,
            default=None,
            help="Refresh at most this many requests per round (default: every due one).",
        )
        parser.add_argument(
            "--concurrency",
            type=_concurrency,
            default=4,
            help="Requests asked about at once, each from its own thread and database "
            f"connection (1 to {MAX_CONCURRENCY}, default: %(default)s).",
        )
        parser.add_argument(
            "--loop", action="store_true", help="Keep polling until SIGTERM or Ctrl-C."
        )
        parser.add_argument(
            "--interval",
            type=_seconds,
            default=None,
            help=f"With --loop: seconds from the start of one round to the start of the "
            f"next (default: {DEFAULT_INTERVAL:g}). A round that takes longer is followed "
            "at once by the next.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["interval"] is not None and not options["loop"]:
            raise CommandError("--interval applies only with --loop.")
        limit: int | None = options["limit"]
        concurrency: int = options["concurrency"]
        interval: float = options["interval"] or DEFAULT_INTERVAL
        verbosity: int = options["verbosity"]
        stop = _StopRequest()
        with _stop_on_signals(stop) as received:
            if options["loop"]:
                rounds, total = self._loop(limit, concurrency, interval, verbosity, stop)
                if verbosity >= 1:
                    self.stdout.write(
                        f"Stopped on {', '.join(received)} after {rounds} round(s); "
                        f"{total} request(s) refreshed."
                    )
            else:
                count, took = self._round(limit, concurrency)
                if verbosity >= 1:
                    self.stdout.write(self._summary(count, took))

    def _loop(
        self,
        limit: int | None,
        concurrency: int,
        interval: float,
        verbosity: int,
        stop: _StopRequest,
    ) -> tuple[int, int]:
        """Poll until ``stop`` is set; return the rounds completed and requests refreshed."""
        if verbosity >= 1:
            self.stdout.write(
                f"Polling every {interval:g}s (concurrency {concurrency}"
                + (f", at most {limit} per round" if limit else "")
                + "). SIGTERM or Ctrl-C stops after the current round."
            )
        rounds = total = 0
        while not stop.is_set():
            started = time.monotonic()
            _drop_stale_connections()
            try:
                count, took = self._round(limit, concurrency)
            except DatabaseError as err:
                # A database restart or failover: keep the poller alive; the next
                # round replaces the broken connection (_drop_stale_connections).
                self.stderr.write(f"Round failed, will retry: {type(err).__name__}: {err}")
            else:
                rounds += 1
                total += count
                if verbosity >= 2 or (verbosity >= 1 and count):
                    self.stdout.write(self._summary(count, took))
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
        return rounds, total

    @staticmethod
    def _round(limit: int | None, concurrency: int) -> tuple[int, float]:
        started = time.monotonic()
        count = services.refresh_pending(limit=limit, concurrency=concurrency)
        return count, time.monotonic() - started

    @staticmethod
    def _summary(count: int, took: float) -> str:
        return f"Refreshed {count} pending request(s) in {took:.2f}s."
