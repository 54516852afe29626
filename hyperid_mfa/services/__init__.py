"""The service layer: the only place that combines the client, tokens, models and signals.

Owns a request's life: a push sent within the push limit (``pushes``, ``ratelimit``),
one request followed, canceled, its approval consumed (``lifecycle``, ``consuming``),
every pending request followed in workers (``poller``), old finished requests
deleted (``retention``), approval windows opened, used and ended (``windows``), a
failing database, cache or broker told from a bug (``dependencies``), and what the
app does when Django or a sign-in signals something (``receivers``). It may import
the client, the tokens, the models and the signals; views, the gate, the admin,
commands and tasks call the functions exported here.
"""

from __future__ import annotations

from .consuming import consume_approval
from .lifecycle import (
    cancel_request,
    pending_request,
    refresh_by_id,
    refresh_request,
    settle,
)
from .poller import refresh_pending
from .pushes import start_request
from .retention import purge_finished
from .windows import revoke_windows

# The documented service functions (docs/design.md, "Services"), and only those: the
# rest of each module is the app's own.
__all__ = [
    "cancel_request",
    "consume_approval",
    "pending_request",
    "purge_finished",
    "refresh_by_id",
    "refresh_pending",
    "refresh_request",
    "revoke_windows",
    "settle",
    "start_request",
]
