"""Keeping a refused form across a sign-in with HyperID.

A user without a usable HyperID token who submits a gated form is asked to sign in
with HyperID first. Without help the form is lost: the identity provider sends the
browser back with a GET. So the approval page keeps the form's fields under a random
key (:func:`keep`), and sends the user to sign in with ``next=`` the resume page of
that key (:func:`resume_url`). After the sign-in the resume page
(:func:`resume_view`) renders the kept fields as a form with a fresh CSRF token,
posted to the path the fields were first posted to, which its script submits at
once: the gate then asks for the approval as usual.

What is kept, and how:

- only a form's fields (``application/x-www-form-urlencoded`` or multipart), never
  the CSRF token, never files (a browser cannot be given a file back: the pages say
  so, and the form is then sent only by a click);
- in Django's cache (``CACHES['default']``), not in the session: django-allauth
  signs the user out and in again when they sign in with HyperID, and a new session
  keeps nothing of the old one. The cache key is a hash of the resume key, whose 256
  random bits appear only in the user's own browser;
- at most :data:`MAX_BYTES` of names and values, :data:`MAX_KEPT` forms per user
  (the oldest goes first), each for :data:`LIFETIME` seconds;
- bound to the user who posted it, to the host it was posted to, and to the path it
  was posted to, as this site routed it (:func:`~hyperid_mfa.gate.origins.on_site_path`):
  the resume page posts there and nowhere else, whatever the request to it says, and
  a key opened on another host of the same project posts nothing;
- never a form Django was told holds a secret (``sensitive_post_parameters``: a
  password): such a form is not kept, and the user types it again;
- used once: the resume page removes it as it renders it (of concurrent requests,
  one only). Unknown, used, expired or another user's: a 4xx page, and nothing is
  posted. A cache that keeps nothing (``DummyCache``) or fails keeps no form: the
  user then comes back to the page the form was on, as without this module.

The resume page runs no gated action: it only renders a form of this site. The
return from the identity provider is a cross-site navigation, and the gate's
refusal of cross-site requests applies to what the form then posts, from this
site's own page.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from ..conf import mfa_settings
from ..exceptions import CacheUnavailable
from ..services import dependencies
from .origins import is_speculative, stays_on_site

logger = logging.getLogger("hyperid_mfa")

#: Seconds a kept form waits for the sign-in.
LIFETIME = 15 * 60
#: Seconds after its lifetime that a key is still known (its user, not its form), to
#: say that it expired.
EXPIRED_KNOWN = 15 * 60
#: The most bytes of field names and values one kept form holds (UTF-8).
MAX_BYTES = 64 * 1024
#: The most forms one user has kept at a time.
MAX_KEPT = 3

PAGE_TEMPLATE = "hyperid_mfa/resume.html"
_PREFIX = "hyperid_mfa:resume:"


def _cache_key(key: str) -> str:
    return _PREFIX + hashlib.sha256(key.encode()).hexdigest()


def _known_key(key: str) -> str:
    return _cache_key(key) + ":known"


def _user_key(user: Any) -> str:
    return f"{_PREFIX}user:{user.pk}"


def keep(
    request: HttpRequest, path: str, fields: Iterable[tuple[str, str]], *, has_files: bool
) -> str | None:
    """Keep a form posted to ``path`` for the signed-in user; its resume key, or None
    where it cannot be kept (no user, too large, a path off this site, a cache that
    keeps nothing or fails)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    if not path.startswith("/") or not stays_on_site(path, request):
        return None
    if getattr(request, "sensitive_post_parameters", None):
        # Django was told the form holds a secret (a password): it waits in no cache
        # and comes back in no page; the user types it again.
        return None
    pairs = [[str(name), str(value)] for name, value in fields]
    if sum(len(name.encode()) + len(value.encode()) for name, value in pairs) > MAX_BYTES:
        return None
    key = secrets.token_urlsafe(32)
    entry = {
        "user": str(user.pk),
        "host": request.get_host(),
        "path": path,
        "fields": pairs,
        "files": bool(has_files),
        "expires": time.time() + LIFETIME,
    }
    try:
        with dependencies.using_cache():
            cache.set(_cache_key(key), entry, LIFETIME)
            if cache.get(_cache_key(key)) is None:  # DummyCache, or no room
                return None
            cache.set(_known_key(key), str(user.pk), LIFETIME + EXPIRED_KNOWN)
            # The user's kept forms, oldest first: past MAX_KEPT, the oldest goes.
            kept = [*(cache.get(_user_key(user)) or []), _cache_key(key)]
            for old in kept[:-MAX_KEPT]:
                cache.delete_many([old, old + ":known"])
            cache.set(_user_key(user), kept[-MAX_KEPT:], LIFETIME + EXPIRED_KNOWN)
    except CacheUnavailable as err:
        logger.warning("The form could not be kept for after the sign-in: %s", err)
        return None
    return key


def resume_url(key: str) -> str | None:
    """The path of the resume page of ``key``; None where the app's URLs are not
    installed."""
    try:
        return reverse("hyperid_mfa:resume", args=[key])
    except NoReverseMatch:
        return None


@never_cache
@require_safe
def resume_view(request: HttpRequest, key: str) -> HttpResponse:
    """The form kept under ``key``, posted again to its path by the page's script."""
    if is_speculative(request) or request.method == "HEAD":
        # A prefetch must not use the key up before the user's own navigation.
        return _answer(request, 503, "unavailable")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return _answer(request, 403, "signed_out")
    try:
        with dependencies.using_cache():
            entry = cache.get(_cache_key(key))
            if not isinstance(entry, dict):
                if cache.get(_known_key(key)) == str(user.pk):
                    cache.delete(_known_key(key))
                    return _answer(request, 410, "expired")
                return _answer(request, 404, "unknown")
            if entry.get("user") != str(user.pk):
                # Left for its own user: knowing a key is not a way to spoil it.
                return _answer(request, 403, "not_yours")
            if entry.get("host") != request.get_host():
                # Kept on another of the project's sites (one cache, one user table):
                # its path means something else here. Left for its own host.
                return _answer(request, 404, "unknown")
            # Of concurrent requests for one key, only the one that deletes it goes on.
            # Its marker goes first: a form gone while its marker stays had expired.
            cache.delete(_known_key(key))
            if not cache.delete(_cache_key(key)):
                return _answer(request, 404, "unknown")
    except CacheUnavailable:
        return _answer(request, 503, "unavailable")
    if entry.get("expires", 0) <= time.time():
        return _answer(request, 410, "expired")
    path = entry.get("path")
    if not isinstance(path, str) or not path.startswith("/") or not stays_on_site(path, request):
        return _answer(request, 404, "unknown")
    return _page(
        request,
        200,
        {
            "action": path,
            "fields": entry.get("fields") or [],
            "has_files": bool(entry.get("files")),
        },
    )


def _answer(request: HttpRequest, status: int, reason: str) -> HttpResponse:
    titles = {
        "unavailable": _("This page cannot be shown now"),
        "signed_out": _("Sign in to continue"),
        "unknown": _("This form is no longer kept"),
        "not_yours": _("This form was kept for someone else"),
        "expired": _("This form was kept too long"),
    }
    details = {
        "unavailable": _("Reload the page in a moment to continue."),
        "signed_out": _("You are not signed in. Sign in, then submit your form again."),
        "unknown": _(
            "It was already sent again, or it was never kept here. Go back and submit "
            "your form again."
        ),
        "not_yours": _("Go back and submit your form again."),
        "expired": _("It is kept for %(minutes)d minutes. Go back and submit your form again.")
        % {"minutes": LIFETIME // 60},
    }
    return _page(request, status, {"title": titles[reason], "detail": details[reason]})


def _page(request: HttpRequest, status: int, context: dict[str, Any]) -> HttpResponse:
    response = HttpResponse(
        render_to_string(
            PAGE_TEMPLATE,
            {"base_template": mfa_settings.BASE_TEMPLATE, **context},
            request=request,
        ),
        status=status,
    )
    # Nothing may frame the page whose script posts a form, and the key in its URL
    # goes to no other site.
    response["X-Frame-Options"] = "DENY"
    response["Referrer-Policy"] = "same-origin"
    return response
