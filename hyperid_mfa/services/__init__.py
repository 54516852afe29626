"""The service layer: the only place that combines the client, tokens, models and signals.

Owns a request's life: a push sent within the push limit (``pushes``, ``ratelimit``),
one request followed, canceled, its approval consumed (``lifecycle``, ``spending``),
every pending request followed in workers (``poller``), old finished requests
deleted (``retention``), approval windows opened, used and ended (``windows``), a
failing database, cache or broker told from a bug (``dependencies``), and what the
app does when Django or a sign-in signals something (``receivers``). It may import
the client, the tokens, the models and the signals; views, the gate, the admin,
commands and tasks call the functions exported here.
"""

from __future__ import annotations

from .lifecycle import (
    cancel_request,
    pending_request,
    refresh_by_id,
    refresh_request,
    settle,
)
from .poller import POLL_BATCH_SIZE, refresh_pending
from .pushes import (
    MAX_ACTION_LENGTH,
    MAX_QUESTION_LENGTH,
    default_question,
    new_code,
    next_push_wait,
    start_request,
)
from .retention import PURGE_BATCH_SIZE, finished_before, parse_duration, purge_finished
from .spending import consume_approval
from .windows import (
    WindowKey,
    end_session_windows,
    end_windows_after_password_change,
    open_window,
    revoke_windows,
    use_window,
    window_key,
)

__all__ = [
    "MAX_ACTION_LENGTH",
    "MAX_QUESTION_LENGTH",
    "POLL_BATCH_SIZE",
    "PURGE_BATCH_SIZE",
    "WindowKey",
    "cancel_request",
    "consume_approval",
    "default_question",
    "end_session_windows",
    "end_windows_after_password_change",
    "finished_before",
    "new_code",
    "next_push_wait",
    "open_window",
    "parse_duration",
    "pending_request",
    "purge_finished",
    "refresh_by_id",
    "refresh_pending",
    "refresh_request",
    "revoke_windows",
    "settle",
    "start_request",
    "use_window",
    "window_key",
]
