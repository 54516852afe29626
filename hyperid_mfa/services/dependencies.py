"""The services the app needs besides HyperID, and what their failure becomes.

Three: Django's cache (the push limit's slots, the API's throttles), the database
(every record) and, with ``REFRESH_AFTER_START``, the Celery broker. This module
is the one place that tells "a service is down" from a bug: it knows each driver's
errors, and turns one into a :class:`~hyperid_mfa.exceptions.DependencyUnavailable`
that the gate, the API and the admin answer as every refusal (``503
mfa_unavailable`` with ``Retry-After``). Anything else (a ``TypeError``, a
``ProgrammingError`` for a missing migration) stays a crash.

The errors it recognises:

- the database: Django's ``OperationalError`` and ``InterfaceError`` (a connection
  refused, lost or killed, a server shutting down, a lock wait given up);
- the cache: redis-py's ``ConnectionError`` and ``TimeoutError`` as Django's Redis
  backend raises them, pymemcache's and pylibmc's errors, and around the app's own
  cache calls also ``OSError`` (sockets, the file cache) and the database errors
  (the database cache);
- the broker: kombu's ``OperationalError``, which Celery raises once its publish
  retries are consumed.

Each refusal is logged once, by whoever answers it (:func:`describe` is the line):
an ERROR naming the service, the driver's error (its class and first line, never a
traceback) and what to check. The traceback goes to DEBUG on the ``hyperid_mfa``
logger, for when the one line is not enough.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
from collections.abc import Iterator
from typing import TypeVar

from django.db import InterfaceError, OperationalError

from ..constants import TOKEN
from ..exceptions import (
    BrokerUnavailable,
    CacheUnavailable,
    DatabaseBusy,
    DatabaseUnavailable,
    DependencyUnavailable,
    HyperIDError,
    MFARefusal,
)

logger = logging.getLogger("hyperid_mfa")

R = TypeVar("R", bound=DependencyUnavailable)

#: SQLSTATEs of a database that gave up waiting rather than failed: lock_not_available
#: (``lock_timeout``), query_canceled (``statement_timeout``), deadlock_detected.
_GAVE_UP_WAITING = frozenset({"55P03", "57014", "40P01"})
#: How SQLite says it gave up waiting: SQLITE_BUSY once the busy timeout has run
#: out; SQLITE_LOCKED is how a shared-cache database refuses at once.
_SQLITE_BUSY = ("database is locked", "database table is locked")

DATABASE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


def _errors(module: str, *names: str) -> tuple[type[Exception], ...]:
    """The exception classes ``names`` of an optional library; none if it is absent."""
    try:
        found = importlib.import_module(module)
    except ImportError:
        return ()
    return tuple(getattr(found, name) for name in names if hasattr(found, name))


@functools.cache
def _cache_client_errors() -> tuple[type[Exception], ...]:
    """Errors only a cache client raises (recognised anywhere)."""
    return (
        *_errors("redis.exceptions", "ConnectionError", "TimeoutError"),
        *_errors("pymemcache.exceptions", "MemcacheError"),
        *_errors("pylibmc", "Error"),
    )


@functools.cache
def broker_errors() -> tuple[type[Exception], ...]:
    """What Celery raises when the broker cannot take a task."""
    return _errors("kombu.exceptions", "OperationalError")


@functools.cache
def cache_errors() -> tuple[type[Exception], ...]:
    """What a call of Django's cache raises when its server fails."""
    return (*_cache_client_errors(), OSError, *DATABASE_ERRORS)


@functools.cache
def failures() -> tuple[type[Exception], ...]:
    """Every error :func:`refusal_for` recognises wherever it was raised: for an
    ``except`` clause around the gate or a view."""
    return (DependencyUnavailable, *DATABASE_ERRORS, *_cache_client_errors())


def _first_line(err: BaseException) -> str:
    """The driver's error as a log line may show it: its class and first line."""
    text = str(err).strip().splitlines()
    detail = f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
    return detail[:300]


def _gave_up_waiting(err: BaseException) -> bool:
    cause = err.__cause__
    codes = {getattr(cause, "sqlstate", None), getattr(cause, "pgcode", None)}  # psycopg 3, 2
    return bool(codes & _GAVE_UP_WAITING) or str(err).startswith(_SQLITE_BUSY)


def _caused_by(refusal: R, err: BaseException) -> R:
    refusal.__cause__ = err
    logger.debug("%s: the error as raised", refusal, exc_info=err)
    return refusal


def database_refusal(err: BaseException) -> DatabaseUnavailable:
    """The refusal for a database error: busy (a lock wait given up) or unavailable."""
    cls = DatabaseBusy if _gave_up_waiting(err) else DatabaseUnavailable
    return _caused_by(cls(_first_line(err)), err)


def cache_refusal(err: BaseException) -> CacheUnavailable:
    """The refusal for an error of Django's cache."""
    return _caused_by(CacheUnavailable(_first_line(err)), err)


def broker_refusal(err: BaseException) -> BrokerUnavailable:
    """The refusal for an error of the Celery broker."""
    return _caused_by(BrokerUnavailable(_first_line(err)), err)


def refusal_for(err: BaseException) -> DependencyUnavailable | None:
    """What ``err`` means if a service failed (a refusal); None if it is a bug."""
    if isinstance(err, DependencyUnavailable):
        return err
    if isinstance(err, DATABASE_ERRORS):
        return database_refusal(err)
    if isinstance(err, _cache_client_errors()):
        return cache_refusal(err)
    if isinstance(err, broker_errors()):
        return broker_refusal(err)
    return None


@contextlib.contextmanager
def using_cache() -> Iterator[None]:
    """Around calls of Django's cache: a failure of its server raises
    :class:`CacheUnavailable`, whatever the backend."""
    try:
        yield
    except cache_errors() as err:
        raise cache_refusal(err) from err


@contextlib.contextmanager
def using_database() -> Iterator[None]:
    """Around statements whose failure should be told apart from HyperID's: a
    database error raises :class:`DatabaseBusy` or :class:`DatabaseUnavailable`."""
    try:
        yield
    except DATABASE_ERRORS as err:
        raise database_refusal(err) from err


# --- the one log line ---------------------------------------------------------------------

HYPERID_HINT = (
    "Check that this host reaches HYPERID_MFA['API_BASE_URL'] (DNS, firewall, proxy) "
    "and whether HyperID reports an incident; pending requests stay pending and are "
    "asked about again."
)
ISSUER_HINT = (
    "Check that this host reaches the token endpoint of HYPERID_MFA['ISSUER'] (DNS, "
    "firewall, proxy); users' tokens are refreshed again on their next request."
)


def describe(refusal: MFARefusal) -> str:
    """The ERROR line for a refusal that says a service is down: which service, what
    failed, what to check."""
    if isinstance(refusal, DependencyUnavailable):
        return f"{refusal} {refusal.hint}"
    if isinstance(refusal, HyperIDError) and refusal.call == TOKEN:
        return f"HyperID's token endpoint unavailable: {refusal} {ISSUER_HINT}"
    return f"HyperID unavailable: {refusal} {HYPERID_HINT}"
