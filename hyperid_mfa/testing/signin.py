"""HyperID's sign-in: the authorization endpoint, the answer to its page, and the sign-out.

An authorization request (GET, or POST as OpenID Connect Core 3.1.2.1 allows) shows
the sign-in page (:mod:`.signin_page`); its form posts the account's name back with
the page's token, and the browser goes back to the client with a ``code``.

What is refused, and how (RFC 6749, section 4.1.2.1): an unknown ``client_id`` or a
``redirect_uri`` the client may not use stops at an error page, never redirecting;
everything else goes back to the client as ``error=...&state=...``: a
``response_type`` other than ``code``, no supported scope, a ``code_challenge``
without S256 (``plain`` is refused), ``prompt=none`` without a session, the user's
Cancel. Scopes HyperID does not offer are ignored (RFC 6749, section 3.3).

The page's token is its CSRF protection: random, single use, bound to the pending
authorization, expiring with it. A form post whose ``Origin`` names another site is
refused as well. A sign-in leaves a session cookie, which only ``prompt=none``
uses: the page is shown on every other request, so that a test may sign in as
whoever it likes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .clients import checked_redirect_uri, is_loopback_uri, origin_of
from .grants import AuthorizationRequest
from .oidc import AUTHORIZATION_CODE_TTL, SCOPES_SUPPORTED
from .responses import FakeResponse
from .signin_page import CSRF_FIELD, message_page, sign_in_page
from .state import HyperIDState

__all__ = ["SESSION_COOKIE", "SIGN_IN_TTL", "authorize", "end_session"]

#: Seconds, by the fake's clock, a sign-in page stays usable.
SIGN_IN_TTL = 600.0

#: The cookie naming the browser's session at the fake (for ``prompt=none``).
SESSION_COOKIE = "fake_hyperid_session"

# Longest state, nonce or login_hint accepted; longer ones are certainly a bug.
_MAX_VALUE = 2048
_MAX_SUBJECT = 200
# Accounts the page suggests, newest first.
_SUGGESTED_ACCOUNTS = 50
_READS = ("GET", "HEAD")
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}\Z")


class _Stop(Exception):
    """A failure shown on an error page: the client cannot be trusted with it."""

    def __init__(self, status: int, title: str, text: str, *, allow: str | None = None) -> None:
        super().__init__(text)
        self.page = message_page(status, title, text)
        if allow is not None:
            self.page.headers["Allow"] = allow


class _ToClient(Exception):
    """A failure sent back to the client at its redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def authorize(
    state: HyperIDState,
    method: str,
    route: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> FakeResponse:
    """Answer a request to the authorization endpoint at path ``route``."""
    try:
        if method in _READS:
            params, repeated = _parameters(query)
        elif method == "POST":
            params, repeated = _parameters(body)
            if CSRF_FIELD in params:
                if repeated:
                    raise _Stop(400, "Malformed form", "A field of the form appears twice.")
                return _sign_in(state, route, params, headers)
        else:
            raise _Stop(
                405, "Method not allowed", "The sign-in takes GET or POST.", allow="GET, HEAD, POST"
            )
        return _authorization_request(state, route, params, repeated, headers)
    except _Stop as stop:
        return stop.page


def end_session(
    state: HyperIDState, method: str, query: str, headers: Mapping[str, str], body: bytes
) -> FakeResponse:
    """The end-session endpoint: forget the browser's session, then go back to the client."""
    try:
        if method not in (*_READS, "POST"):
            raise _Stop(
                405, "Method not allowed", "Signing out takes GET or POST.", allow="GET, HEAD, POST"
            )
        params, repeated = _parameters(query if method in _READS else body)
        if repeated:
            raise _Stop(400, "Malformed request", f"Repeated parameters: {', '.join(repeated)}.")
        back = params.get("post_logout_redirect_uri")
        if back is not None and not _redirect_uri_allowed(state, back):
            raise _Stop(
                400,
                "Unknown post-logout redirect URI",
                f"{back} is neither a redirect URI registered for the client nor a "
                "loopback URI the fake accepts, so the sign-out stops here.",
            )
    except _Stop as stop:
        return stop.page
    state.grants.end_session(_cookie(headers))
    if back is None:
        response = message_page(200, "Signed out of HyperID", "You can close this page.")
    else:
        extra = {} if params.get("state") is None else {"state": params["state"]}
        response = _redirect(back, extra, status=302)
    response.headers["Set-Cookie"] = _session_cookie(state, "", max_age=0)
    return response


# --------------------------------------------------------------------------- the request


def _authorization_request(
    state: HyperIDState,
    route: str,
    params: dict[str, str],
    repeated: list[str],
    headers: Mapping[str, str],
) -> FakeResponse:
    client_id, redirect_uri = params.get("client_id"), params.get("redirect_uri")
    for name in ("client_id", "redirect_uri"):
        if name in repeated:
            raise _Stop(400, "Malformed request", f"The parameter {name} appears twice.")
    if not client_id:
        raise _Stop(400, "No client_id", "The authorization request names no client_id.")
    if client_id != state.client_id:
        raise _Stop(400, "Unknown client", f"HyperID knows no client {client_id!r}.")
    if not redirect_uri:
        raise _Stop(400, "No redirect_uri", "The authorization request has no redirect_uri.")
    if not _redirect_uri_allowed(state, redirect_uri):
        registered = ", ".join(state.redirect_uris) or "none"
        loopback = "accepted" if state.allow_loopback_redirect_uris else "refused"
        raise _Stop(
            400,
            "Unregistered redirect URI",
            f"{redirect_uri} is not a redirect URI of client {client_id}, so the sign-in "
            f"stops here. Registered: {registered}; loopback URIs: {loopback}. Register "
            "it with FakeHyperID(redirect_uris=[...]), fake.register_redirect_uri() or "
            "the simulator's --redirect-uri.",
        )
    try:
        if repeated:
            # RFC 6749, section 3.1: no parameter may appear twice.
            raise _ToClient("invalid_request", f"repeated parameters: {', '.join(repeated)}")
        request, prompt_none = _checked_request(params, client_id, redirect_uri)
    except _ToClient as refusal:
        return _refusal(state, redirect_uri, params.get("state"), refusal)
    if prompt_none:
        return _silent_sign_in(state, request, headers)
    token = state.grants.open_sign_in(request, SIGN_IN_TTL)
    return _page(state, route, request, token, request.login_hint or "")


def _checked_request(
    params: dict[str, str], client_id: str, redirect_uri: str
) -> tuple[AuthorizationRequest, bool]:
    """The request, once its client and redirect URI are known good; _ToClient if not valid."""
    if "request" in params:
        raise _ToClient("request_not_supported", "request objects are not supported")
    if "request_uri" in params:
        raise _ToClient("request_uri_not_supported", "request_uri is not supported")
    response_type = params.get("response_type")
    if not response_type:
        raise _ToClient("invalid_request", "response_type is required")
    if response_type != "code":
        raise _ToClient("unsupported_response_type", "only response_type=code is supported")
    if params.get("response_mode", "query") != "query":
        raise _ToClient("invalid_request", "only response_mode=query is supported")
    for name in ("state", "nonce", "login_hint"):
        if len(params.get(name) or "") > _MAX_VALUE:
            raise _ToClient("invalid_request", f"{name} is longer than {_MAX_VALUE} characters")
    requested = tuple(dict.fromkeys((params.get("scope") or "").split()))
    granted = tuple(scope for scope in requested if scope in SCOPES_SUPPORTED)
    if not granted:
        raise _ToClient("invalid_scope", f"ask for one of: {' '.join(SCOPES_SUPPORTED)}")
    challenge = _code_challenge(params)
    prompts = (params.get("prompt") or "").split()
    if "none" in prompts and len(prompts) > 1:
        raise _ToClient("invalid_request", "prompt=none goes with no other prompt")
    request = AuthorizationRequest(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=granted,
        requested_scopes=requested,
        state=params.get("state"),
        nonce=params.get("nonce"),
        code_challenge=challenge,
        login_hint=params.get("login_hint"),
    )
    return request, prompts == ["none"]


def _code_challenge(params: dict[str, str]) -> str | None:
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise _ToClient("invalid_request", "code_challenge_method without code_challenge")
        return None
    # Without a method, RFC 7636 means "plain", which HyperID refuses like any other.
    if method != "S256":
        raise _ToClient("invalid_request", "code_challenge_method must be S256")
    if not _S256_CHALLENGE.match(challenge):
        raise _ToClient("invalid_request", "code_challenge must be a base64url SHA-256")
    return challenge


def _silent_sign_in(
    state: HyperIDState, request: AuthorizationRequest, headers: Mapping[str, str]
) -> FakeResponse:
    session = state.grants.session(_cookie(headers))
    if session is None or request.login_hint not in (None, session.subject):
        refusal = _ToClient("login_required", "the user is not signed in at HyperID")
        return _refusal(state, request.redirect_uri, request.state, refusal)
    code = state.grants.issue_code(
        request, session.subject, session.auth_time, AUTHORIZATION_CODE_TTL
    )
    return _code_redirect(state, request, code, status=302)


# --------------------------------------------------------------------------- the page


def _page(
    state: HyperIDState,
    route: str,
    request: AuthorizationRequest,
    token: str,
    subject: str,
    problem: str | None = None,
) -> FakeResponse:
    return sign_in_page(
        action=route,
        token=token,
        client_id=request.client_id,
        redirect_uri=request.redirect_uri,
        redirect_origin=origin_of(request.redirect_uri),
        requested_scopes=request.requested_scopes,
        subject=subject,
        accounts=list(reversed(state.users))[:_SUGGESTED_ACCOUNTS],
        problem=problem,
        status=200 if problem is None else 400,
    )


def _sign_in(
    state: HyperIDState, route: str, form: dict[str, str], headers: Mapping[str, str]
) -> FakeResponse:
    """The page's form, posted: sign the account in, or cancel."""
    token = form[CSRF_FIELD]
    pending = state.grants.pending_sign_in(token)
    if pending is None:
        raise _Stop(
            400,
            "This sign-in page has expired",
            "It was used already, or waited too long. Go back to the site and sign in again.",
        )
    if not _same_origin(state, headers):
        raise _Stop(403, "Refused", "The sign-in form was posted from another site.")
    request = pending.request
    if "cancel" in form:
        state.grants.close_sign_in(token)
        refusal = _ToClient("access_denied", "the user canceled the sign-in")
        return _refusal(state, request.redirect_uri, request.state, refusal)
    subject = form.get("subject", "").strip()
    problem = _subject_problem(subject)
    if problem is not None:
        return _page(state, route, request, token, subject, problem)
    state.grants.close_sign_in(token)
    state.users.setdefault(subject, True)  # a new account gets a device: pushes reach it
    now = state.now()
    session = state.grants.open_session(subject, now)
    code = state.grants.issue_code(request, subject, now, AUTHORIZATION_CODE_TTL)
    response = _code_redirect(state, request, code, status=303)
    response.headers["Set-Cookie"] = _session_cookie(state, session)
    return response


def _subject_problem(subject: str) -> str | None:
    if not subject:
        return "Enter the name of a HyperID account."
    if len(subject) > _MAX_SUBJECT:
        return f"An account name has at most {_MAX_SUBJECT} characters."
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in subject):
        return "An account name has no control characters."
    return None


def _same_origin(state: HyperIDState, headers: Mapping[str, str]) -> bool:
    """Whether the form post comes from the fake's own pages, as far as ``Origin`` tells."""
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser, or an old one: the page's token is the guard
    allowed = {origin_of(state.current_issuer()).lower()}
    host = headers.get("host")
    if host:
        allowed.update({f"http://{host}".lower(), f"https://{host}".lower()})
    return origin.lower() in allowed


# --------------------------------------------------------------------------- answers


def _code_redirect(
    state: HyperIDState, request: AuthorizationRequest, code: str, *, status: int
) -> FakeResponse:
    params = {"code": code}
    if request.state is not None:
        params["state"] = request.state
    # RFC 9207: names the issuer, against mix-up attacks (discovery announces it).
    params["iss"] = state.current_issuer()
    return _redirect(request.redirect_uri, params, status=status)


def _refusal(
    state: HyperIDState, redirect_uri: str, client_state: str | None, refusal: _ToClient
) -> FakeResponse:
    params = {"error": refusal.error, "error_description": refusal.description}
    if client_state is not None:
        params["state"] = client_state
    params["iss"] = state.current_issuer()
    return _redirect(redirect_uri, params, status=302)


def _redirect(uri: str, params: dict[str, str], *, status: int) -> FakeResponse:
    parts = urlsplit(uri)
    query = "&".join(filter(None, (parts.query, urlencode(params))))
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    return FakeResponse(status, {"Location": location, "Cache-Control": "no-store"}, b"")


def _redirect_uri_allowed(state: HyperIDState, uri: str) -> bool:
    try:
        checked_redirect_uri(uri)
    except ValueError:
        return False
    return uri in state.redirect_uris or (
        state.allow_loopback_redirect_uris and is_loopback_uri(uri)
    )


def _parameters(raw: str | bytes) -> tuple[dict[str, str], list[str]]:
    """Form or query parameters (the first of each name), and the names that repeat."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise _Stop(400, "Malformed request", "The parameters are not valid UTF-8.") from None
    params: dict[str, str] = {}
    repeated: list[str] = []
    for name, value in pairs:
        if name not in params:
            params[name] = value
        elif name not in repeated:
            repeated.append(name)
    return params, repeated


def _cookie(headers: Mapping[str, str]) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return None if morsel is None else morsel.value


def _session_cookie(state: HyperIDState, value: str, *, max_age: int | None = None) -> str:
    issuer = state.current_issuer()
    path = urlsplit(issuer).path or "/"
    cookie = f"{SESSION_COOKIE}={value}; Path={path}; HttpOnly; SameSite=Lax"
    if max_age is not None:
        cookie += f"; Max-Age={max_age}"
    if issuer.startswith("https://"):
        cookie += "; Secure"
    return cookie
