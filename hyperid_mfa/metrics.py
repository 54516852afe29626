"""Prometheus metrics, with the ``metrics`` extra (``prometheus-client``).

The metrics live in prometheus-client's default registry, so a project that already
exposes it (django-prometheus's ``/metrics``, ``prometheus_client.start_http_server``,
a view of its own) shows them with nothing to configure; :func:`metrics_view` is a
view to mount for a project that exposes nothing yet (staff or a bearer token only).

They are kept by receivers of the app's signals, connected by
``HyperIDMFAConfig.ready()``: pushes sent and not sent, decisions, approvals
consumed, and every HTTP exchange with HyperID (``hyperid_call_finished``). Without
prometheus-client, nothing is connected, nothing is collected, and the view
answers 501 saying what to install.

Labels are bounded: ``action`` is the gated action's name, which comes from the
code (the gate's declaration, the admin's operations), never from a request; past
:data:`MAX_ACTIONS` distinct names (a project naming actions from data, say) new
ones are counted as ``"_other"``. ``call``, ``outcome`` and ``result`` come from
fixed sets. No user id or transaction id is ever a label.

Under gunicorn (several processes), set ``PROMETHEUS_MULTIPROC_DIR`` before the
workers start: prometheus-client then keeps each process's values in files there,
and :func:`metrics_view` adds them up (docs/operations.md has the configuration).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .conf import mfa_settings
from .constants import AVAILABILITY, CANCEL, START, STATUS_GET, TOKEN
from .models import MFARequest, PushOutcome, State
from .signals import (
    hyperid_call_finished,
    mfa_push_not_sent,
    mfa_request_consumed,
    mfa_request_started,
    mfa_request_status_changed,
)

try:
    import prometheus_client
except ImportError:  # the metrics extra is not installed: nothing is collected
    prometheus_client = None  # type: ignore[assignment]

logger = logging.getLogger("hyperid_mfa")

#: hyperid_mfa_pushes_total's outcomes: sent, limited, cooldown, failed.
PUSH_OUTCOMES = tuple(PushOutcome.values)
#: hyperid_mfa_decisions_total's results (MFARequest.state after the transition).
DECISIONS = (State.APPROVED, State.DENIED, State.EXPIRED, State.CANCELED)
#: The HyperID calls, as hyperid_mfa_hyperid_calls_total's ``call`` names them.
CALLS = (START, STATUS_GET, CANCEL, AVAILABILITY, TOKEN)
#: Distinct action names given their own label value; later ones are "_other".
MAX_ACTIONS = 200
OTHER_ACTION = "_other"

#: Seconds from a push to its decision: people take seconds, REQUEST_TTL is minutes.
DECISION_BUCKETS = (1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
#: Seconds of one exchange with HyperID, up to the default deadline (3.05 + 10 s).
CALL_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15)


class _Metrics:
    """The app's metrics, registered once in prometheus-client's default registry."""

    def __init__(self) -> None:
        client = prometheus_client
        self.pushes = client.Counter(
            "hyperid_mfa_pushes",
            "Pushes the app was asked to send, by action and outcome "
            "(sent, limited, cooldown, failed).",
            ["action", "outcome"],
        )
        self.decisions = client.Counter(
            "hyperid_mfa_decisions",
            "Requests that left pending, by action and result "
            "(approved, denied, expired, canceled).",
            ["action", "result"],
        )
        self.consumed = client.Counter(
            "hyperid_mfa_approvals_consumed",
            "Approvals consumed: a gated action ran once on each.",
            ["action"],
        )
        self.calls = client.Counter(
            "hyperid_mfa_hyperid_calls",
            "HTTP exchanges with HyperID (each attempt of a retried call), by call and "
            "result: HyperID's result name or how the exchange failed.",
            ["call", "result"],
        )
        self.call_seconds = client.Histogram(
            "hyperid_mfa_hyperid_call_seconds",
            "Seconds of each HTTP exchange with HyperID, by call.",
            ["call"],
            buckets=CALL_BUCKETS,
        )
        self.time_to_decision = client.Histogram(
            "hyperid_mfa_time_to_decision_seconds",
            "Seconds from a push to the decision learnt, by action and result.",
            ["action", "result"],
            buckets=DECISION_BUCKETS,
        )


_metrics = _Metrics() if prometheus_client is not None else None

_actions: set[str] = set()
_actions_lock = threading.Lock()
_overflow_reported = False


def enabled() -> bool:
    """Whether metrics are collected (prometheus-client is installed)."""
    return _metrics is not None


def action_label(action: str) -> str:
    """``action``, or ``"_other"`` once MAX_ACTIONS distinct names have been seen."""
    global _overflow_reported
    if action in _actions:
        return action
    with _actions_lock:
        if len(_actions) < MAX_ACTIONS:
            _actions.add(action)
            return action
        report, _overflow_reported = not _overflow_reported, True
    if report:
        logger.warning(
            "More than %d gated action names: the hyperid_mfa metrics count the new ones "
            "as %r. Action names should come from the code, not from data.",
            MAX_ACTIONS,
            OTHER_ACTION,
        )
    return OTHER_ACTION


# --- receivers ----------------------------------------------------------------------------


def count_sent(sender: Any, mfa_request: Any, **kwargs: Any) -> None:
    if _metrics is not None:
        _metrics.pushes.labels(action_label(mfa_request.action), PushOutcome.SENT.value).inc()


def count_not_sent(sender: Any, action: str, outcome: str, **kwargs: Any) -> None:
    if _metrics is not None:
        _metrics.pushes.labels(action_label(action), outcome).inc()


def count_decision(sender: Any, mfa_request: Any, new_state: str, **kwargs: Any) -> None:
    if _metrics is None or new_state not in DECISIONS:
        return
    action = action_label(mfa_request.action)
    result = State(new_state).value
    _metrics.decisions.labels(action, result).inc()
    if mfa_request.completed_at is not None and mfa_request.created_at is not None:
        seconds = (mfa_request.completed_at - mfa_request.created_at).total_seconds()
        # The two times come from two clocks (the database's, the server's).
        _metrics.time_to_decision.labels(action, result).observe(max(0.0, seconds))


def count_consumed(sender: Any, mfa_request: Any, **kwargs: Any) -> None:
    if _metrics is not None:
        _metrics.consumed.labels(action_label(mfa_request.action)).inc()


def count_call(sender: Any, call: str, result: str, seconds: float, **kwargs: Any) -> None:
    if _metrics is not None:
        _metrics.calls.labels(call, result).inc()
        _metrics.call_seconds.labels(call).observe(seconds)


def connect() -> None:
    """Connect the receivers; without prometheus-client, none."""
    if _metrics is None:
        return
    for signal, receiver, sender in (
        (mfa_request_started, count_sent, MFARequest),
        (mfa_push_not_sent, count_not_sent, MFARequest),
        (mfa_request_status_changed, count_decision, MFARequest),
        (mfa_request_consumed, count_consumed, MFARequest),
        (hyperid_call_finished, count_call, None),
    ):
        signal.connect(
            receiver, sender=sender, dispatch_uid=f"hyperid_mfa.metrics.{receiver.__name__}"
        )


# --- the view ------------------------------------------------------------------------------


def _bearer(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def _token_matches(given: str) -> bool:
    expected = mfa_settings.METRICS_TOKEN
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def _exposition(accept: str) -> tuple[bytes, str]:
    """prometheus-client's exposition of the default registry, or of every process's
    files in multi-process mode; in the format the scraper asks for."""
    from prometheus_client import exposition

    registry: Any = prometheus_client.REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import CollectorRegistry, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    encoder, content_type = exposition.choose_encoder(accept)
    return encoder(registry), content_type


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The metrics in Prometheus' text format (OpenMetrics when asked for).

    For staff signed in, or a scraper presenting ``HYPERID_MFA['METRICS_TOKEN']``
    as ``Authorization: Bearer <token>``. A request that presents a token is judged
    by the token alone.
    """
    token = _bearer(request)
    if token is not None:
        if not _token_matches(token):
            response = _text(401, "Wrong or no metrics token.")
            response["WWW-Authenticate"] = 'Bearer realm="metrics", error="invalid_token"'
            return response
    elif not _is_staff(request):
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            return _text(403, "The metrics are for staff, or for a scraper with the token.")
        response = _text(401, "Sign in as staff, or send the metrics token.")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if prometheus_client is None:
        return _text(
            501,
            "prometheus-client is not installed: pip install 'django-hyperid-mfa[metrics]'.",
        )
    body, content_type = _exposition(request.META.get("HTTP_ACCEPT", ""))
    return HttpResponse(body, content_type=content_type)
