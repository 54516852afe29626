"""Failures that are not HyperID's: a service the app needs, a request the gate
cannot take, the site's configuration, and the answer raised from inside a view."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import APIException

from .base import BAD_REQUEST, CROSS_SITE, MISCONFIGURED, PENDING, MFARefusal

# --- transient, but not HyperID: another service the app needs -------------------------------


class DependencyUnavailable(MFARefusal):
    """A service the app needs besides HyperID failed: the cache that counts pushes,
    the database, the Celery broker. Nothing was sent or consumed that could not be
    recorded; the same request may work once the service is back.

    ``dependency`` names the service, ``hint`` says what to check (both logged, in one
    ERROR line); the message names the driver's error, never a value it carried.
    :mod:`hyperid_mfa.services.dependencies` turns a driver's error into one of these.
    """

    #: The service, as log lines name it.
    dependency: ClassVar[str] = "a service the app needs"
    user_message = _("This action cannot be approved right now. Try again in a moment.")

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(f"{self.dependency} unavailable: {detail}")


class CacheUnavailable(DependencyUnavailable):
    """Django's cache (``CACHES['default']``) did not answer: the push limit cannot
    count, so no push is sent."""

    dependency = "cache"
    hint = (
        "Check that the server of CACHES['default'] (Redis, Memcached) is up and "
        "reachable from this host, and give its client a timeout (Redis: OPTIONS "
        "socket_timeout and socket_connect_timeout). No push is sent until it answers."
    )


class DatabaseUnavailable(DependencyUnavailable):
    """The database failed the statement (unreachable, connection lost, server
    restarting): whatever the statement was, the view does not run."""

    dependency = "database"
    hint = (
        "Check that the database server is up and reachable; Django reconnects on the "
        "next request (CONN_HEALTH_CHECKS = True checks a kept connection first)."
    )


class DatabaseBusy(DatabaseUnavailable):
    """The database gave up waiting for a lock (PostgreSQL's ``lock_timeout``,
    SQLite's busy timeout): another transaction held the row; nothing was changed."""

    hint = (
        "Another transaction held a lock the request needed until the lock wait timed "
        "out (PostgreSQL lock_timeout, SQLite's busy timeout). If this recurs, look for "
        "long transactions on the hyperid_mfa tables."
    )

    def __init__(self, detail: str, *, retry_after: float | None = 1) -> None:
        super().__init__(detail, retry_after=retry_after)


class BrokerUnavailable(DependencyUnavailable):
    """The Celery broker refused a task: the refresh ``REFRESH_AFTER_START`` schedules
    after a push is not sent (the push stands; polling follows it)."""

    dependency = "Celery broker"
    hint = (
        "Check that the broker of the project's Celery app (CELERY_BROKER_URL) is up and "
        "reachable. Until then pushes stand and are followed by polling alone."
    )


# --- refused by the gate itself -------------------------------------------------------------


class RequestUnreadable(MFARefusal, ValueError):
    """The request cannot be read for binding, or lacks what the question needs.

    The message, if any, is for the user.
    """

    code = BAD_REQUEST
    status_code = 400
    retryable = False
    log_level: ClassVar[int | None] = None
    user_message = _("The request could not be read.")
    user_title = _("Approval is not possible")

    def user_text(self) -> str:
        return str(self.args[0]) if self.args else str(self.user_message)


class UnreadableBody(RequestUnreadable):
    """The request's body cannot be read for binding (malformed JSON, a charset other
    than UTF-8, nested too deeply); the message says which."""

    def user_text(self) -> str:
        return _("The request could not be read: %s") % self


class QuestionNotShowable(RequestUnreadable):
    """The phone's question cannot show what the approval binds: it is longer than
    HyperID shows, or a bound value is not text. Nothing is sent; ``hint`` (logged
    as an ERROR) tells the site's developers what to do."""

    user_message = _(
        "This request holds more than your phone can show for approval, "
        "so it cannot be approved as it is."
    )

    log_level = logging.ERROR  # with the hint: what the site's developers should do

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(message)
        self.hint = hint  # type: ignore[misc]

    def user_text(self) -> str:
        return str(self.user_message)


class CrossSiteRequest(MFARefusal):
    """Not a request the user made on this site's pages: another site's page sent it
    in the user's browser, or a link opened from outside the browser (a mail or chat
    app), or the browser prefetched it. Whoever chose the values, it was not the
    site: no push is sent and nothing is consumed. The user may start over from here."""

    code = CROSS_SITE
    status_code = 403
    retryable = False
    log_level: ClassVar[int | None] = None
    user_title = _("Did you mean to do this?")
    user_message = _(
        "This action was requested by another site, or loaded ahead by the browser, so "
        "it was not carried out. Continue from here only if you meant to do it: your "
        "phone will ask you to approve it."
    )


class SiteMisconfigured(MFARefusal):
    """The site cannot ask for approvals as it is set up; the log says what to fix."""

    code = MISCONFIGURED
    status_code = 500
    retryable = False
    user_message = _("This action cannot be approved: the site is not set up correctly.")
    user_title = _("Approval is not possible")


class HyperIDConfigurationError(ImproperlyConfigured):
    """The ``HYPERID_MFA`` setting is wrong (unknown key, bad value)."""


class UndecryptableTokens(HyperIDConfigurationError):
    """Stored token rows that no configured key decrypts (``pks``), found by
    :func:`hyperid_mfa.tokens.store.rotate_encryption`, which rewrote ``rewritten`` other rows."""

    def __init__(self, pks: list[Any], rewritten: int = 0) -> None:
        self.pks = pks
        self.rewritten = rewritten
        super().__init__(
            f"{len(pks)} stored HyperID token row(s) cannot be decrypted with any "
            f"configured key; {rewritten or 'no'} other row(s) were re-encrypted"
        )


class MissingExtra(ImproperlyConfigured, ImportError):
    """An optional part of the app is used without the extra that installs what it needs.

    The message names the extra to install (``pip install "django-hyperid-mfa[celery]"``).
    Also an ``ImportError``, so that code trying an optional import with ``except
    ImportError`` still sees one.
    """

    def __init__(self, extra: str, needed_by: str, missing: str | None = None) -> None:
        self.extra = extra
        self.needed_by = needed_by
        what = f" ({missing} is not installed)" if missing else ""
        super().__init__(
            f"{needed_by} needs the [{extra}] extra{what}: "
            f'pip install "django-hyperid-mfa[{extra}]"',
            name=missing,
        )


class MiddlewareMissing(ImproperlyConfigured):
    """``require_approval`` was called in a plain Django view of a site without
    ``MFAApprovalMiddleware``: nothing would answer its :class:`MFAApprovalRequired`
    with the approval page, so nothing is sent or consumed. Django answers 500."""

    code = MISCONFIGURED
    status_code = 500


# --- the view may not run yet -----------------------------------------------------------------


class MFAApprovalRequired(APIException):
    """The gated action may not run now: carries the gate's decision and its answer.

    Raised by ``require_approval`` and by the DRF permission ``MFAApproved``. DRF
    answers it as any ``APIException``: its ``status_code``, ``detail`` as the JSON
    body (``{"code", "detail", "mfa_request"...}``) and ``Retry-After`` from ``wait``.
    In a plain Django view, ``MFAApprovalMiddleware`` answers it as the decorator
    would, with the approval page or JSON, from ``decision``.
    ``hyperid_mfa.gate.rendering.approval_required(request, decision)`` makes one.
    """

    status_code = 403
    default_detail = _("Approval with HyperID is required.")
    default_code = PENDING

    def __init__(self, decision: Any, body: Mapping[str, Any]) -> None:
        super().__init__()
        #: What the gate decided (``hyperid_mfa.gate.Decision``).
        self.decision = decision
        self.status_code = decision.status
        # Set after __init__: APIException would turn numbers and None into strings.
        self.detail = dict(body)
        # DRF's exception handler turns ``wait`` into a Retry-After header.
        self.wait = decision.retry_after
