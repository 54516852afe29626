"""``manage.py hyperid_mfa_poll``: follow pending MFA requests without a browser open.

One pass by default (for cron or a Kubernetes CronJob), which exits with status 1
when any refresh failed; ``--loop`` keeps polling (for a supervised process), reports
each round's failed refreshes on stderr and exits with status 0 when stopped. Several
pollers, on one host or many, may run at once: ``services.refresh_pending`` claims
rows with ``SELECT ... FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError, connections

from hyperid_mfa import services
from hyperid_mfa.management.base import HyperIDMFACommand, Seconds, WholeNumber

#: The HTTP client keeps 32 connections per host: more threads would open connections
#: only for the pool to drop them. Each thread also holds a database connection.
MAX_CONCURRENCY = 32
DEFAULT_INTERVAL = 2.0
#: How much of each failure's message the report quotes.
MAX_REASON_LENGTH = 200
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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


@dataclass(frozen=True)
class Round:
    """What one round did: the requests it asked about, and the failures among them."""

    asked: int
    errors: tuple[str, ...]
    took: float

    @property
    def failed(self) -> int:
        return len(self.errors)

    @property
    def refreshed(self) -> int:
        return self.asked - self.failed

    def summary(self) -> str:
        if not self.failed:
            return f"Refreshed {self.asked} pending request(s) in {self.took:.2f}s."
        return (
            f"Refreshed {self.refreshed} of {self.asked} pending request(s) in "
            f"{self.took:.2f}s; {self.failed} failed."
        )

    def failures(self) -> str:
        """The failures in short: how many of each kind, with the first one's message."""
        kinds: Counter[str] = Counter()
        examples: dict[str, str] = {}
        for error in self.errors:
            kind = error.split(":", 1)[0]
            kinds[kind] += 1
            examples.setdefault(kind, error)
        lines = [f"{self.failed} of {self.asked} refresh(es) failed:"]
        for kind, count in kinds.most_common():
            example = examples[kind]
            if len(example) > MAX_REASON_LENGTH:
                example = example[: MAX_REASON_LENGTH - 3] + "..."
            lines.append(f"  {count} request(s): {example}")
        return "\n".join(lines)


class Command(HyperIDMFACommand):
    help = (
        "Ask HyperID about the pending MFA requests that are due, in one pass or, with "
        "--loop, until stopped. SIGTERM or Ctrl-C stops it after the current round. "
        "One pass exits with status 1 when any refresh failed; --loop reports failed "
        "refreshes on stderr and keeps going."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit",
            type=WholeNumber(minimum=1),
            default=None,
            help="Refresh at most this many requests per round (default: every due one).",
        )
        parser.add_argument(
            "--concurrency",
            type=WholeNumber(minimum=1, maximum=MAX_CONCURRENCY),
            default=4,
            help="Requests asked about at once, each from its own thread and database "
            f"connection (1 to {MAX_CONCURRENCY}, default: %(default)s).",
        )
        parser.add_argument(
            "--loop", action="store_true", help="Keep polling until SIGTERM or Ctrl-C."
        )
        parser.add_argument(
            "--interval",
            type=Seconds(),
            default=None,
            help=f"With --loop: seconds from the start of one round to the start of the "
            f"next (default: {DEFAULT_INTERVAL:g}). A round that takes longer is followed "
            "at once by the next.",
        )

    def check_arguments(self, options: dict[str, Any]) -> None:
        if options["interval"] is not None and not options["loop"]:
            self.usage_error("--interval applies only with --loop")

    def handle(self, *args: Any, **options: Any) -> None:
        limit: int | None = options["limit"]
        concurrency: int = options["concurrency"]
        interval: float = options["interval"] or DEFAULT_INTERVAL
        verbosity: int = options["verbosity"]
        stop = _StopRequest()
        with _stop_on_signals(stop) as received:
            if options["loop"]:
                rounds, total, failed = self._loop(limit, concurrency, interval, verbosity, stop)
                if verbosity >= 1:
                    self.stdout.write(
                        f"Stopped on {', '.join(received)} after {rounds} round(s); "
                        f"{total} request(s) refreshed"
                        + (f", {failed} refresh(es) failed." if failed else ".")
                    )
                return
            done = self._round(limit, concurrency)
        if verbosity >= 1:
            self.stdout.write(done.summary())
        if done.failed:
            # Exit status 1, for cron and the like; the requests stay pending and the
            # next run asks about them again.
            raise CommandError(
                f"{done.failures()}\nThose requests stay pending; the next run asks again."
            )

    def _loop(
        self,
        limit: int | None,
        concurrency: int,
        interval: float,
        verbosity: int,
        stop: _StopRequest,
    ) -> tuple[int, int, int]:
        """Poll until ``stop`` is set; return the rounds completed, the requests
        refreshed and the refreshes that failed."""
        if verbosity >= 1:
            self.stdout.write(
                f"Polling every {interval:g}s (concurrency {concurrency}"
                + (f", at most {limit} per round" if limit else "")
                + "). SIGTERM or Ctrl-C stops after the current round."
            )
        rounds = total = failed = 0
        while not stop.is_set():
            started = time.monotonic()
            _drop_stale_connections()
            try:
                done = self._round(limit, concurrency)
            except DatabaseError as err:
                # A database restart or failover: keep the poller alive; the next
                # round replaces the broken connection (_drop_stale_connections).
                self.stderr.write(f"Round failed, will retry: {type(err).__name__}: {err}")
            else:
                rounds += 1
                total += done.refreshed
                failed += done.failed
                if verbosity >= 2 or (verbosity >= 1 and done.asked):
                    self.stdout.write(done.summary())
                if done.failed:
                    # A poller under a supervisor keeps going: HyperID's trouble is
                    # usually passing, and the next round asks about them again.
                    self.stderr.write(done.failures())
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
        return rounds, total, failed

    @staticmethod
    def _round(limit: int | None, concurrency: int) -> Round:
        started = time.monotonic()
        errors: list[str] = []  # list.append is atomic: the round's threads share it

        def failed(mfa_request: Any, error: Exception) -> None:
            errors.append(f"{type(error).__name__}: {error}")

        asked = services.refresh_pending(limit=limit, concurrency=concurrency, on_failure=failed)
        return Round(asked, tuple(errors), time.monotonic() - started)
