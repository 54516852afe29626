"""The service layer: the only place that combines the client, tokens, models and signals.

Views, the decorator, the admin, commands and tasks call these functions. They live
in four modules by concern, all reached from here:

- :mod:`hyperid_mfa.pushes`: a push sent, within the push limit (:func:`start_request`);
- :mod:`hyperid_mfa.lifecycle`: one request followed, canceled, its approval spent
  (:func:`refresh_request`, :func:`cancel_request`, :func:`consume_approval`,
  :func:`pending_request`, and :func:`settle` for the gate);
- :mod:`hyperid_mfa.poller`: every pending request followed in workers
  (:func:`refresh_pending`);
- :mod:`hyperid_mfa.retention`: old finished requests deleted
  (:func:`purge_finished`);
- :mod:`hyperid_mfa.windows`: approval windows opened, used and ended
  (:func:`open_window`, :func:`use_window`, :func:`revoke_windows`...).
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
