"""Audit lines on their own logger, ``hyperid_mfa.audit``: who, which request, which
transaction, from where.

Services write one line per event (start, transition, consumption, cancel, refusal;
an approval window opened, a run inside it, its end).
Views that act for a browser wrap their service calls in :func:`request_context`, so
the lines also carry the client's IP address. Tokens are never logged.

The logger is a child of ``hyperid_mfa``, so a project that configures only that one
still gets the audit lines; one that configures ``hyperid_mfa.audit`` (with
``propagate: False``) routes them apart from operational warnings.

Behind a reverse proxy, make ``REMOTE_ADDR`` the client's address (for example with
the proxy's own middleware); this module does not trust ``X-Forwarded-For`` itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger("hyperid_mfa.audit")

_client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hyperid_mfa_client_ip", default=None
)


@contextlib.contextmanager
def request_context(request: Any) -> Iterator[None]:
    """Attribute the audit lines written inside the block to ``request``'s client."""
    meta = getattr(request, "META", {})
    token = _client_ip.set(meta.get("REMOTE_ADDR") or None)
    try:
        yield
    finally:
        _client_ip.reset(token)


def client_ip() -> str | None:
    return _client_ip.get()


def log(
    event: str,
    *,
    user_id: Any = None,
    mfa_request: Any = None,
    level: int = logging.INFO,
) -> None:
    """Write one audit line. ``mfa_request`` is an MFARequest or None."""
    fields: dict[str, Any] = {"mfa_event": event, "client_ip": client_ip()}
    if mfa_request is not None:
        fields.update(
            user_id=mfa_request.user_id,
            mfa_request_id=str(mfa_request.pk),
            transaction_id=mfa_request.transaction_id,
            action=mfa_request.action,
        )
        logger.log(
            level,
            "MFA request %s: user=%s request=%s transaction=%s action=%s ip=%s",
            event,
            fields["user_id"],
            fields["mfa_request_id"],
            fields["transaction_id"],
            fields["action"],
            fields["client_ip"],
            extra=fields,
        )
    else:
        fields["user_id"] = user_id
        logger.log(
            level, "MFA %s: user=%s ip=%s", event, user_id, fields["client_ip"], extra=fields
        )


def log_window(event: str, window: Any, *, action: str | None = None) -> None:
    """Write one audit line about an approval window (``window``: an ApprovalWindow);
    ``action`` is the gated action that opened it or ran inside it."""
    fields: dict[str, Any] = {
        "mfa_event": event,
        "client_ip": client_ip(),
        "user_id": window.user_id,
        "window_id": str(window.pk),
        "scope": window.scope,
        "mfa_request_id": str(window.opened_by_id),
        "action": action,
        "runs": window.runs,
    }
    logger.info(
        "MFA %s: user=%s window=%s scope=%s action=%s runs=%s ip=%s",
        event,
        fields["user_id"],
        fields["window_id"],
        fields["scope"],
        action,
        window.runs,
        fields["client_ip"],
        extra=fields,
    )
