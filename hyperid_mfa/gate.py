"""The engine behind ``require_mfa_approval``, ``MFAApprovalRequiredMixin`` and ``MFAApproved``.

For one request to a gated view, :meth:`Gate.check` decides, in this order:

1. a usable approval for (user, action, fingerprint) exists: consume it, let the view run;
2. a request for the same triple is pending: refresh it (coalesced); if it is approved
   now, consume it and let the view run, else answer "pending";
3. otherwise send a new push (unless the user is over the push limit) and answer
   "pending".

Everything else (HyperID unreachable, an unusable token, too many pushes) is an answer
that does not run the view. :func:`render` turns an answer into the HTTP response of
DESIGN.md's table: JSON for API clients, an HTML page for browsers, same status code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.http import escape_leading_slashes
from django.utils.translation import gettext as _

from . import atomicity, audit, fingerprint, services
from .conf import mfa_settings
from .exceptions import (
    AccessDenied,
    HyperIDConfigurationError,
    HyperIDError,
    NoAuthenticatorDevice,
    RateLimited,
    TemplateNotFound,
    TokenUnavailable,
)
from .fingerprint import CSRF_FIELD, Binder, UnreadableRequest, django_request, is_drf_request
from .models import MFARequest

logger = logging.getLogger("hyperid_mfa")

#: Seconds a client is asked to wait when HyperID is unavailable and said nothing.
DEFAULT_RETRY_AFTER = 5

# The ``code`` of each answer that does not run the view.
PENDING = "mfa_pending"
RATE_LIMITED = "mfa_rate_limited"
UNAVAILABLE = "mfa_unavailable"
REAUTHENTICATE = "mfa_reauthenticate"
NO_AUTHENTICATOR = "mfa_no_authenticator"
BAD_REQUEST = "mfa_bad_request"
MISCONFIGURED = "mfa_misconfigured"
NOT_AUTHENTICATED = "not_authenticated"


@dataclass
class Answer:
    """What the gate decided. ``allowed`` lets the view run; otherwise the rest is the reply."""

    allowed: bool
    status: int = 200
    code: str = ""
    detail: str = ""
    mfa_request: MFARequest | None = None
    retry_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _retry_after(err: HyperIDError) -> int:
    if err.retry_after is not None:
        return max(1, int(err.retry_after + 0.999))
    return DEFAULT_RETRY_AFTER


def _misconfigured() -> Answer:
    return Answer(
        False,
        500,
        MISCONFIGURED,
        _("This action cannot be approved: the site is not set up correctly."),
    )


def _failure(err: HyperIDError, mfa_request: MFARequest | None = None) -> Answer:
    """The answer for a HyperID failure; the pending request, if any, is kept."""
    if isinstance(err, TemplateNotFound):
        logger.error(
            "MFA gate: HyperID does not know the MFA template %s: set HYPERID_MFA"
            "['TEMPLATE_ID'] to a template of your HyperID client (%s)",
            mfa_settings.TEMPLATE_ID,
            err,
        )
        return _misconfigured()
    if isinstance(err, RateLimited):
        return Answer(
            False,
            429,
            RATE_LIMITED,
            _("Too many approval requests. Try again later."),
            mfa_request,
            retry_after=_retry_after(err),
        )
    if isinstance(err, (TokenUnavailable, AccessDenied)):
        return Answer(
            False,
            403,
            REAUTHENTICATE,
            _("Sign in with HyperID again to approve this action."),
            mfa_request,
        )
    if isinstance(err, NoAuthenticatorDevice):
        return Answer(
            False,
            403,
            NO_AUTHENTICATOR,
            _("Set up the HyperID Authenticator app to approve this action."),
            mfa_request,
        )
    logger.warning("MFA gate: HyperID unavailable: %s", err)
    return Answer(
        False,
        503,
        UNAVAILABLE,
        _("HyperID cannot be reached right now. Try again in a moment."),
        mfa_request,
        retry_after=_retry_after(err),
    )


def _pending(mfa_request: MFARequest) -> Answer:
    return Answer(
        False,
        403,
        PENDING,
        _("Approve this action in the HyperID Authenticator app: check that it shows %(code)s.")
        % {"code": mfa_request.code},
        mfa_request,
    )


class Gate:
    """One gated action: what it is called, what is bound, how the push reads."""

    def __init__(
        self,
        action: str,
        *,
        question: str | Callable[..., str] | None = None,
        bind: Binder = None,
        max_age: float | None = None,
    ) -> None:
        if not isinstance(action, str) or not action:
            raise TypeError("the gated action must be a non-empty string")
        if isinstance(bind, str):
            raise TypeError("bind= takes a sequence of field names or a callable, not a string")
        self.action = action
        self.question = question
        self.bind = bind
        self.max_age = max_age

    def __repr__(self) -> str:
        return f"<Gate {self.action!r}>"

    def check(
        self, request: Any, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> Answer:
        """Decide whether the view may run now (see the module docstring)."""
        kwargs = kwargs or {}
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return Answer(False, 401, NOT_AUTHENTICATED, _("Sign in to continue."))
        alias = atomicity.in_callers_transaction()
        if alias is not None:
            # Spent inside the view's transaction, an approval would come back unspent
            # whenever the view fails: refuse rather than risk a second run.
            logger.error(
                "MFA gate %s: the gated view runs inside a transaction on database %r "
                "(ATOMIC_REQUESTS or atomic()), so one approval could run it more than "
                "once. Take the view out of ATOMIC_REQUESTS: decorate the class with "
                "@method_decorator(transaction.non_atomic_requests, name='dispatch'), "
                "put @require_mfa_approval on the function view itself, or call the "
                "gated function outside atomic().",
                self.action,
                alias,
            )
            return _misconfigured()
        try:
            fp = fingerprint.compute(request, bind=self.bind, args=args, kwargs=kwargs)
        except UnreadableRequest as err:
            return Answer(False, 400, BAD_REQUEST, _("The request could not be read: %s") % err)
        with audit.request_context(django_request(request)):
            return self._decide(request, user, fp, args, kwargs)

    def _decide(
        self, request: Any, user: Any, fp: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Answer:
        if services.consume_approval(user, self.action, fp, self.max_age) is not None:
            return Answer(True)
        pending = services.pending_request(user, self.action, fp)
        if pending is not None:
            try:
                services.refresh_request(pending)
            except HyperIDError as err:
                return _failure(err, pending)
            if pending.is_pending:
                return _pending(pending)
            if services.consume_approval(user, self.action, fp, self.max_age) is not None:
                return Answer(True)
            # Denied, expired, canceled or failed: a new push, below (cooldowns apply).
        try:
            question = self._question(request, args, kwargs)
        except (KeyError, ValueError, TypeError, LookupError) as err:
            logger.info("MFA gate %s: cannot word the question: %r", self.action, err)
            return Answer(
                False,
                400,
                BAD_REQUEST,
                _("The request is missing information needed to ask for approval."),
            )
        try:
            mfa_request = services.start_request(
                user, self.action, question=question, fingerprint=fp
            )
        except HyperIDError as err:
            return _failure(err)
        except HyperIDConfigurationError as err:
            logger.error(
                "MFA gate %s: the HYPERID_MFA configuration is wrong: %s", self.action, err
            )
            return _misconfigured()
        return _pending(mfa_request)

    def _question(self, request: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
        if self.question is None:
            return None
        if callable(self.question):
            return str(self.question(request, *args, **kwargs))
        return str(self.question)


# --- answers as HTTP responses ---------------------------------------------------------


def wants_json(request: Any) -> bool:
    """DRF requests, ``Accept: application/json`` and JSON bodies get JSON."""
    if is_drf_request(request):
        return True
    plain = django_request(request)
    if fingerprint.is_json_body(plain):
        return True
    accept = plain.META.get("HTTP_ACCEPT", "")
    for media_range in accept.split(","):
        media_type = media_range.split(";")[0].strip().lower()
        if media_type == "application/json" or media_type.endswith("+json"):
            return True
    return False


def _url(request: HttpRequest, name: str, mfa_request: MFARequest) -> str | None:
    try:
        return request.build_absolute_uri(reverse(name, args=[mfa_request.pk]))
    except NoReverseMatch:
        return None


def body(request: Any, answer: Answer) -> dict[str, Any]:
    """The JSON body of DESIGN.md: code, detail and, where one exists, the MFA request."""
    data: dict[str, Any] = {"code": answer.code, "detail": answer.detail}
    mfa_request = answer.mfa_request
    if mfa_request is not None:
        data["mfa_request"] = {
            "id": str(mfa_request.pk),
            "transaction_id": mfa_request.transaction_id,
            "state": mfa_request.state,
            "code": mfa_request.code,
            "question": mfa_request.question,
            "status_url": _url(django_request(request), "hyperid_mfa:request-detail", mfa_request),
            "expires_at": mfa_request.expires_at.isoformat(),
        }
    return data


def headers(answer: Answer) -> dict[str, str]:
    extra = dict(answer.headers)
    if answer.retry_after is not None:
        extra["Retry-After"] = str(answer.retry_after)
    return extra


def _resubmission(request: HttpRequest) -> dict[str, Any]:
    """How the approval page sends the original request again (its form's method, URL
    and hidden fields). The URL is a path on this site, never a redirect target
    taken from the request."""
    if request.method == "POST" and not fingerprint.is_json_body(request):
        data, url, method = request.POST, request.get_full_path(), "POST"
    else:
        # A GET form replaces the query string with its fields: carry them as fields.
        data, url, method = request.GET, request.path, "GET"
    fields = [[key, value] for key in data if key != CSRF_FIELD for value in data.getlist(key)]
    return {
        "method": method,
        # A path beginning with // would be read as another host: keep it on this site.
        "url": escape_leading_slashes(url),
        "fields": fields,
        "has_files": method == "POST" and bool(request.FILES),
    }


def render(request: Any, answer: Answer) -> HttpResponse:
    """The response for an answer that does not run the view (plain Django views)."""
    if wants_json(request):
        response: HttpResponse = JsonResponse(body(request, answer), status=answer.status)
    else:
        plain = django_request(request)
        mfa_request = answer.mfa_request
        context = {
            "answer": answer,
            "mfa_request": mfa_request,
            "base_template": mfa_settings.BASE_TEMPLATE,
            "config": {
                "state": mfa_request.state if mfa_request else None,
                "code": answer.code,
                "statusUrl": _url(plain, "hyperid_mfa:request-detail", mfa_request)
                if mfa_request
                else None,
                "cancelUrl": _url(plain, "hyperid_mfa:request-cancel", mfa_request)
                if mfa_request
                else None,
                "pollInterval": mfa_settings.POLL_INTERVAL,
                "retryAfter": answer.retry_after,
                "resubmit": _resubmission(plain),
                "messages": _page_messages(),
            },
        }
        response = HttpResponse(
            render_to_string("hyperid_mfa/approval_pending.html", context, request=plain),
            status=answer.status,
        )
    for name, value in headers(answer).items():
        response[name] = value
    # The answer depends on the user and on live state: never cache it.
    response["Cache-Control"] = "no-store"
    return response


def _page_messages() -> dict[str, str]:
    """Texts the page's script shows, translated here (the script carries none)."""
    return {
        "pending": _("Waiting for your approval…"),
        "approved": _("Approved. Continuing…"),
        "denied": _("You denied this request in the app."),
        "expired": _("The request expired before it was approved."),
        "canceled": _("The request was canceled."),
        "failed": _("HyperID no longer knows this request."),
        "consumed": _("This approval has already been used."),
        "error": _("Cannot reach the server; still trying…"),
        "cancelFailed": _("Could not cancel the request. Try again."),
        "filesLost": _(
            "Approved. Submit the form again to continue: files cannot be resent automatically."
        ),
    }
