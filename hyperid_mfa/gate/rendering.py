"""Turning the gate's :class:`~hyperid_mfa.gate.Decision` into an answer: the one place
that knows every kind of response.

- a plain Django view gets an :class:`~django.http.HttpResponse`: JSON for API
  clients (``Accept: application/json`` or a JSON body), otherwise the approval page,
  with the same status code; not signed in, it is sent to the login page like
  ``login_required`` (JSON clients get a 403);
- a DRF view method gets a DRF ``Response`` with the same JSON body;
- ``require_approval`` and the DRF permission raise
  :class:`~hyperid_mfa.exceptions.MFAApprovalRequired`, an ``APIException``
  carrying the decision and that body (:func:`approval_required`), which DRF
  answers, and :class:`~hyperid_mfa.middleware.MFAApprovalMiddleware` answers with
  :func:`respond` in plain Django views.

Every answer is ``Cache-Control: no-store`` (it depends on the user and live state)
and carries ``Retry-After`` where the refusal is worth retrying.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from ..api.polling import poll_interval
from ..conf import mfa_settings
from ..exceptions import CROSS_SITE, NOT_AUTHENTICATED, REAUTHENTICATE, MFAApprovalRequired
from ..models import MFARequest
from . import resume
from .decide import Decision
from .fingerprint import (
    CSRF_FIELD,
    FORM_MEDIA_TYPES,
    django_request,
    is_drf_request,
    is_json_body,
)
from .origins import on_site_path, stays_on_site

PAGE_TEMPLATE = "hyperid_mfa/approval_pending.html"


def respond(
    request: Any,
    decision: Decision,
    *,
    base_template: str | None = None,
    extra_context: Mapping[str, Any] | None = None,
) -> Any:
    """The answer of a decorated view or the mixin to a decision that does not run it.

    ``base_template`` and ``extra_context`` go to the approval page (the admin shows
    it in its own layout)."""
    if decision.code == NOT_AUTHENTICATED:
        if is_drf_request(request):
            from rest_framework.exceptions import NotAuthenticated

            # DRF picks 401 or 403 from the view's authentication classes.
            raise NotAuthenticated()
        if wants_json(request):
            return JsonResponse(json_body(request, decision), status=403)
        return redirect_to_login(on_site_path(django_request(request), query=True) or "/")
    if is_drf_request(request):
        from rest_framework.response import Response

        return Response(
            json_body(request, decision), status=decision.status, headers=headers(decision)
        )
    if wants_json(request):
        response: HttpResponse = JsonResponse(json_body(request, decision), status=decision.status)
    else:
        response = approval_page(request, decision, base_template, extra_context)
    for name, value in headers(decision).items():
        response[name] = value
    return response


def approval_required(request: Any, decision: Decision) -> MFAApprovalRequired:
    """The exception that answers ``decision`` from inside a view: DRF renders its
    JSON body, ``MFAApprovalMiddleware`` the decision (as :func:`respond`)."""
    return MFAApprovalRequired(decision, json_body(request, decision))


def wants_json(request: Any) -> bool:
    """DRF requests, ``Accept: application/json`` and JSON bodies get JSON."""
    if is_drf_request(request):
        return True
    plain = django_request(request)
    if is_json_body(plain):
        return True
    accept = plain.META.get("HTTP_ACCEPT", "")
    for media_range in accept.split(","):
        media_type = media_range.split(";")[0].strip().lower()
        if media_type == "application/json" or media_type.endswith("+json"):
            return True
    return False


def json_body(request: Any, decision: Decision) -> dict[str, Any]:
    """The JSON body: code, detail, where one exists the MFA request, and for "sign
    in again" the URL that does it (``REAUTHENTICATE_URL``), where there is one."""
    data: dict[str, Any] = {"code": decision.code, "detail": decision.detail}
    if decision.code == REAUTHENTICATE:
        url = reauthenticate_url(request)
        if url is not None:
            data["reauthenticate_url"] = url
    mfa_request = decision.mfa_request
    if mfa_request is not None:
        data["mfa_request"] = {
            "id": str(mfa_request.pk),
            "transaction_id": mfa_request.transaction_id,
            "state": mfa_request.state,
            "code": mfa_request.code,
            "question": mfa_request.question,
            "status_url": _url(django_request(request), "hyperid_mfa:request-detail", mfa_request),
            "expires_at": mfa_request.expires_at.isoformat(),
            # When to poll status_url (then send the request again once approved), as
            # request-detail says it; null once the request is finished.
            "poll_interval": poll_interval(mfa_request),
        }
    return data


def headers(decision: Decision) -> dict[str, str]:
    extra = {"Cache-Control": "no-store"}
    if decision.retry_after is not None:
        extra["Retry-After"] = str(decision.retry_after)
    if decision.code == CROSS_SITE:
        # Its one button starts the action over: no other site may frame it and
        # steer a click onto it.
        extra["X-Frame-Options"] = "DENY"
    return extra


def approval_page(
    request: Any,
    decision: Decision,
    base_template: str | None = None,
    extra_context: Mapping[str, Any] | None = None,
) -> HttpResponse:
    """The HTML page: the code to match, the question, and the script's settings,
    extending ``base_template`` (default ``BASE_TEMPLATE``)."""
    plain = django_request(request)
    mfa_request = decision.mfa_request
    resubmit = resubmission(plain)
    sign_in = _sign_in(plain, resubmit) if decision.code == REAUTHENTICATE else None
    context = {
        "landmark": "main",
        **(extra_context or {}),
        "answer": decision,
        "retry_after_clock": clock(decision.retry_after),
        "mfa_request": mfa_request,
        "sign_in": sign_in,
        "reauthenticate_url": sign_in["url"] if sign_in else None,
        # Where "Back" leads once the request has ended without approval.
        "back_url": _on_site_referer(plain) or "/",
        "base_template": base_template or mfa_settings.BASE_TEMPLATE,
        "config": {
            "state": mfa_request.state if mfa_request else None,
            "code": decision.code,
            "statusUrl": _url(plain, "hyperid_mfa:request-detail", mfa_request),
            "cancelUrl": _url(plain, "hyperid_mfa:request-cancel", mfa_request),
            "pollInterval": mfa_settings.POLL_INTERVAL,
            "retryAfter": decision.retry_after,
            "resubmit": resubmit,
            "messages": _page_messages(),
        },
    }
    return HttpResponse(
        render_to_string(PAGE_TEMPLATE, context, request=plain), status=decision.status
    )


def clock(seconds: int | None) -> str:
    """``seconds`` as the page's countdown shows them, minutes and seconds ("1:05");
    "" for None. The script counts down in the same form."""
    if not seconds:
        return ""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


#: allauth's login URL for the HyperID app of hyperid_mfa.contrib.allauth.
ALLAUTH_LOGIN = ("openid_connect_login", {"provider_id": "hyperid"})


def reauthenticate_url(request: Any) -> str | None:
    """Where the user signs in with HyperID again, coming back here afterwards (the
    JSON answer's ``reauthenticate_url``; the page keeps a refused form, :func:`_sign_in`).

    ``REAUTHENTICATE_URL`` (a URL name, a path or an absolute URL); unset, allauth's
    HyperID login when ``hyperid_mfa.contrib.allauth`` is installed; else None.
    """
    url = _sign_in_url()
    if url is None:
        return None
    return _with_next(url, _back_here(django_request(request)))


def _sign_in_url() -> str | None:
    configured = mfa_settings.REAUTHENTICATE_URL
    if configured is None:
        if not apps.is_installed("hyperid_mfa.contrib.allauth"):
            return None
        name, kwargs = ALLAUTH_LOGIN
        try:
            return reverse(name, kwargs=kwargs)
        except NoReverseMatch:
            return None
    try:
        return reverse(configured)
    except NoReverseMatch:
        return configured


def _with_next(url: str, back: str | None) -> str:
    if back is None:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({REDIRECT_FIELD_NAME: back})}"


#: The modules of django-allauth's provider login views.
ALLAUTH_PROVIDER_VIEWS = "allauth.socialaccount.providers."


def sign_in_method(url: str) -> str:
    """How the page sends the user to ``url`` to sign in: ``POST`` to a provider login
    view of django-allauth on this site (a GET shows allauth's confirmation page
    first, a POST with the CSRF token goes straight to HyperID), else ``GET`` (a
    link: mozilla-django-oidc's ``oidc_authentication_init`` takes only GET, and no
    CSRF token goes to another site)."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return "GET"
    try:
        match = resolve(parts.path)
    except Resolver404:
        return "GET"
    module = getattr(match.func, "__module__", None) or ""
    return "POST" if module.startswith(ALLAUTH_PROVIDER_VIEWS) else "GET"


def _sign_in(request: HttpRequest, resubmit: Mapping[str, Any]) -> dict[str, Any] | None:
    """The page's "Sign in with HyperID": its URL and method, and whether the refused
    form is kept for after the sign-in (:mod:`hyperid_mfa.gate.resume`)."""
    url = _sign_in_url()
    if url is None:
        return None
    back = None
    if resubmit["method"] == "POST" and resubmit["url"]:
        key = resume.keep(
            request, resubmit["url"], resubmit["fields"], has_files=resubmit["has_files"]
        )
        back = resume.resume_url(key) if key else None
    return {
        "url": _with_next(url, back or _back_here(request)),
        "method": sign_in_method(url),
        "form_kept": back is not None,
        "has_files": resubmit["has_files"],
    }


def _back_here(request: HttpRequest) -> str | None:
    """The page to come back to after signing in: this one if it can be reloaded
    (GET), else the page the form was on, if it is on this site."""
    if request.method in ("GET", "HEAD"):
        return on_site_path(request, query=True)
    return _on_site_referer(request)


def _on_site_referer(request: HttpRequest) -> str | None:
    """The page the user came from, if it is on this site."""
    referer = request.META.get("HTTP_REFERER")
    return referer if referer and stays_on_site(referer, request) else None


def resubmission(request: HttpRequest) -> dict[str, Any]:
    """How the approval page sends the original request again: its form's method,
    URL and hidden fields.

    The URL is the request's own path as routed, written so that the browser reads
    it as a path of this site (:func:`~hyperid_mfa.gate.origins.on_site_path`), never a
    redirect target taken from the request. ``url`` is None where a form cannot send
    the same request again (another method, a body that is not a form): the page
    then asks the user to send it again themselves.
    """
    method = str(request.method).upper()
    media_type = (request.content_type or "").lower()
    url: str | None
    if method == "POST" and (media_type in FORM_MEDIA_TYPES or not _has_body(request)):
        data, url = request.POST, on_site_path(request, query=True)
    elif method in ("GET", "HEAD"):
        # A GET form replaces the query string with its fields: carry them as fields.
        data, url, method = request.GET, on_site_path(request), "GET"
    else:
        data, url = request.GET, None
    fields = [[key, value] for key in data if key != CSRF_FIELD for value in data.getlist(key)]
    return {
        "method": method,
        "url": url,
        "fields": fields if url is not None else [],
        "has_files": method == "POST" and bool(request.FILES),
    }


def _has_body(request: HttpRequest) -> bool:
    try:
        return bool(request.body)
    except RawPostDataException:  # read as a stream already: there was one
        return True


def _url(request: HttpRequest, name: str, mfa_request: MFARequest | None) -> str | None:
    """The absolute URL of one of the API's views for ``mfa_request``, on this site."""
    if mfa_request is None:
        return None
    try:
        url = request.build_absolute_uri(reverse(name, args=[mfa_request.pk]))
    except NoReverseMatch:
        return None
    return url if stays_on_site(url, request) else None


def _page_messages() -> dict[str, str]:
    """Texts the page's script shows, translated here (the script carries none)."""
    return {
        "deniedTitle": _("You denied this action"),
        "expiredTitle": _("The approval request expired"),
        "canceledTitle": _("The approval request was canceled"),
        "failedTitle": _("The approval request failed"),
        "consumedTitle": _("This approval was already used"),
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
        "sendAgain": _("Approved. Go back and send your request again to continue."),
        # %(time)s: minutes and seconds, "0:30" (the script fills it in as it counts).
        "retryIn": _("You can try again in %(time)s."),
        "retryNow": _("You can try again now."),
    }
