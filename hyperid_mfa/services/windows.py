"""Approval windows: one approval lets a run of gated actions go without a push.

A gate with ``window=`` and ``scope=`` opens a window when its approval is consumed:
for ``window`` seconds (by the database's clock) the gated actions of that scope
run without a push, for that user, in that browser session, while the user's
password stays what it was, until they sign out or staff revoke the window. An
action whose gate has an explicit ``bind=`` runs inside a window only if it binds
the same values as the action that opened it.

Fail closed: a window that cannot be checked (no session, a user without a session
auth hash, a database error) is no window, and the gate asks for an approval as
usual. Nothing here stores a secret in clear: the session key, the user's session
auth hash and the bound values are kept as HMACs keyed with ``SECRET_KEY``.

Reached through :mod:`hyperid_mfa.services`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, router, transaction
from django.db.models import F, Subquery
from django.db.models.functions import Now
from django.utils.crypto import salted_hmac

from .. import audit
from ..models import (
    ApprovalWindow,
    ApprovalWindowQuerySet,
    MFARequest,
    UserModel,
    WindowEnd,
    can_update_returning,
    database_now,
    seconds_ago,
)

logger = logging.getLogger("hyperid_mfa")


def _digest(purpose: str, value: str) -> str:
    return salted_hmac(
        f"hyperid_mfa.window.{purpose}", value, secret=settings.SECRET_KEY, algorithm="sha256"
    ).hexdigest()


def _auth_digest(user: UserModel) -> str | None:
    """The HMAC of the user's session auth hash (which changes with the password);
    None for a user model without one, whose password changes cannot be seen."""
    session_auth_hash = getattr(user, "get_session_auth_hash", None)
    if not callable(session_auth_hash):
        return None
    return _digest("auth", str(session_auth_hash()))


@dataclass(frozen=True)
class WindowKey:
    """What a window must match to be used, and what one is opened with: the user,
    the session (its key's HMAC), the scope, the user's password (the HMAC of the
    session auth hash), the gate's ``window=`` in ``seconds`` (how long a window it
    opens lasts, and how old a window it accepts) and, for a gate with an explicit
    ``bind=``, the HMAC of the bound values."""

    user: UserModel
    scope: str
    seconds: int
    session_digest: str
    auth_digest: str
    binding: str = ""


def window_key(
    user: UserModel, session_key: str | None, scope: str, seconds: int, binding: str = ""
) -> WindowKey | None:
    """The key of ``user``'s windows of ``scope`` in the session ``session_key``;
    None where windows cannot be checked (no session key, no session auth hash)."""
    auth_digest = _auth_digest(user)
    if not session_key or auth_digest is None:
        return None
    return WindowKey(user, scope, seconds, _digest("session", session_key), auth_digest, binding)


def _usable(key: WindowKey) -> ApprovalWindowQuerySet:
    """The key's active windows, newest first."""
    windows = ApprovalWindow.objects.active().filter(
        user_id=key.user.pk,
        scope=key.scope,
        session_digest=key.session_digest,
        auth_digest=key.auth_digest,
        # An action never runs longer after the approval than its own window= allows.
        opened_at__gt=seconds_ago(key.seconds),
    )
    if key.binding:
        windows = windows.filter(binding=key.binding)
    return windows.order_by("-opened_at")


def use_window(key: WindowKey, action: str) -> ApprovalWindow | None:
    """Count a run of ``action`` on the newest window ``key`` may use, and return it;
    None if there is none, or if it cannot be checked.

    One statement where the database has ``UPDATE ... RETURNING``: its own
    conditions (not ended, not expired) decide against a concurrent revocation.
    """
    try:
        window = _count_run(key)
    except DatabaseError as err:
        logger.warning("Approval windows of scope %r cannot be checked: %s", key.scope, err)
        return None
    if window is not None:
        window.user = key.user
        audit.log_window("ran in window", window, action=action)
    return window


def _count_run(key: WindowKey) -> ApprovalWindow | None:
    using = router.db_for_write(ApprovalWindow)
    newest = _usable(key)
    run = {"runs": F("runs") + 1, "last_run_at": Now()}
    if can_update_returning(using):
        rows = (
            ApprovalWindow.objects.using(using)
            .active()
            .filter(pk__in=Subquery(newest.values("pk")[:1]))
        )
        counted = rows.update_returning(**run)
        return counted[0] if counted else None
    window = newest.using(using).first()
    if window is None:
        return None
    if not ApprovalWindow.objects.using(using).active().filter(pk=window.pk).update(**run):
        return None  # ended meanwhile
    window.refresh_from_db(fields=["runs", "last_run_at"])
    return window


def open_window(mfa_request: MFARequest, key: WindowKey) -> ApprovalWindow | None:
    """Open the window of the approval ``mfa_request``, just consumed; None if it could
    not be opened (the action still runs on its approval, without a window)."""
    using = router.db_for_write(ApprovalWindow)
    try:
        now = database_now(using)
        # No transaction of its own: the gate works in autocommit (atomicity.py).
        window = ApprovalWindow.objects.using(using).create(
            user=key.user,
            scope=key.scope,
            opened_by=mfa_request,
            session_digest=key.session_digest,
            auth_digest=key.auth_digest,
            binding=key.binding,
            opened_at=now,
            expires_at=now + timedelta(seconds=key.seconds),
        )
    except IntegrityError:
        # The approval's consumption decides who opens, once; the unique opened_by holds it.
        logger.warning("Approval %s has opened its window already", mfa_request.pk)
        return None
    except DatabaseError as err:
        logger.warning("Could not open the approval window of %s: %s", mfa_request.pk, err)
        return None
    audit.log_window("window opened", window, action=mfa_request.action)
    return window


# --- ending windows before their time -------------------------------------------------------


def _end(windows: ApprovalWindowQuerySet, reason: str, why: str) -> int:
    """End the active ``windows`` for ``reason`` and audit each; how many ended."""
    using = router.db_for_write(ApprovalWindow)
    rows = windows.using(using).active()
    end = {"ended_at": Now(), "end_reason": reason}
    # A savepoint where the caller has a transaction open (ATOMIC_REQUESTS around a
    # sign-out view, say): a failure here must not break the caller's.
    with transaction.atomic(using=using):
        if can_update_returning(using):
            ending = rows.update_returning(**end)
        else:
            ending = list(rows.select_related(None).order_by().select_for_update())
            ended = ApprovalWindow.objects.using(using).filter(pk__in=[w.pk for w in ending])
            ended.update(**end)
    for window in ending:
        audit.log_window(f"window ended: {why}", window)
    return len(ending)


def _end_quietly(windows: ApprovalWindowQuerySet, reason: str, why: str) -> int:
    """:func:`_end`, a failure logged rather than raised: the gate no longer uses these
    windows anyway (their session or password changed), and a sign-out or a password
    change must not fail for them."""
    try:
        return _end(windows, reason, why)
    except DatabaseError as err:
        logger.warning("Could not record the end of approval windows (%s): %s", why, err)
        return 0


def end_session_windows(user: UserModel, session_key: str | None) -> int:
    """End ``user``'s windows in the session ``session_key`` (they signed out)."""
    if not session_key:
        return 0
    windows = ApprovalWindow.objects.filter(
        user_id=user.pk, session_digest=_digest("session", session_key)
    )
    return _end_quietly(windows, WindowEnd.LOGOUT, "signed out")


def end_windows_after_password_change(user: UserModel) -> int:
    """End ``user``'s windows opened with another password than the current one."""
    auth_digest = _auth_digest(user)
    if auth_digest is None:
        return 0
    windows = ApprovalWindow.objects.filter(user_id=user.pk).exclude(auth_digest=auth_digest)
    return _end_quietly(windows, WindowEnd.PASSWORD, "password changed")


def revoke_windows(windows: ApprovalWindowQuerySet, by: str) -> int:
    """End the active windows among ``windows`` (``by``: who revoked them, for the
    audit line); how many."""
    return _end(windows, WindowEnd.REVOKED, f"revoked by {by}")
