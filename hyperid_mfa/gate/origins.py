"""This site, as the request was routed to it: whether a request came from another
site, and whether a URL the app renders stays on this one.

**Cross-site requests.** A gated request the browser sent on behalf of another site
(a link, a form or a script there, opened in the victim's session) must send no
push and consume no approval or window: the other site chose its values. The browser
says where a request comes from, and a page cannot forge what it says:

1. ``Sec-Fetch-Site`` (every current browser): ``same-origin`` and ``same-site``
   are this site's pages, and ``none`` a navigation no page started (typed, a
   bookmark, a link opened from a mail or chat app); ``cross-site``, and any value
   that is not exactly one of the four (a list of values, a future one), is another
   site's, unless the request's ``Origin`` (or, without one, its ``Referer``) is
   one of ``CSRF_TRUSTED_ORIGINS``, whose requests the site accepts as its own.
   A direct navigation (``none``) may ask for a push, which names every value, and
   consume the approval of exactly those values; an attacker writes such a link as
   freely as one on their own site, so it never runs inside an approval window
   (:func:`is_direct_navigation`);
2. without it, ``Origin``, and without that, ``Referer``: this site's when it is
   this site's origin (scheme, host and port, as Django's CSRF check compares
   them, the scheme as ``SECURE_PROXY_SSL_HEADER`` makes it) or one of
   ``CSRF_TRUSTED_ORIGINS``; anything else is another site's, ``Origin: null``
   and a URL that does not read as exactly one origin (user information,
   backslashes, whitespace, another scheme) included;
3. none of the three (API clients, curl): this site's, as before.

**Speculative requests.** A prefetch or prerender (``Sec-Purpose``, and the older
``Purpose``, ``X-Purpose``, ``X-Moz``, and ``X-Sec-Purpose`` of prefetching scripts)
is the browser's guess at a click that may never come: it carries the session as a
click does, so it must not push, consume or run either (:func:`is_speculative`).

**On-site URLs.** A path taken from the request is written so that a browser
reads it as a path of this site (:func:`on_site_path`), and every URL the app
renders is checked as a browser would resolve it (:func:`stays_on_site`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.utils.encoding import escape_uri_path, iri_to_uri
from django.utils.http import escape_leading_slashes, url_has_allowed_host_and_scheme

from .fingerprint import django_request

#: What ``Sec-Fetch-Site`` says of a request this site's page, or the user, started.
THIS_SITE = frozenset({"same-origin", "same-site", "none"})
#: Headers that mark a prefetch or prerender: the fetch standard's, older browsers'
#: and prefetching scripts' (Turbo's ``X-Sec-Purpose``). Each is sent for nothing else.
SPECULATIVE_HEADERS = (
    "HTTP_SEC_PURPOSE",
    "HTTP_PURPOSE",
    "HTTP_X_PURPOSE",
    "HTTP_X_MOZ",
    "HTTP_X_SEC_PURPOSE",
)
DEFAULT_PORTS = {"http": 80, "https": 443}

#: An origin: (scheme, host, port), lowercased, the port made explicit.
Origin = tuple[str, str, int]

# Characters a browser drops or reads differently in a URL (WHATWG URL parsing):
# backslashes, ASCII whitespace and controls, anywhere in a serialized origin.
_NOT_IN_AN_ORIGIN = re.compile(r"[\\\x00-\x20\x7f]")
# WHATWG strips leading and trailing C0 controls and spaces, then every tab and newline.
_EDGES = re.compile(r"^[\x00-\x20]+|[\x00-\x20]+$")
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")


# --- where a request comes from ---------------------------------------------------------


def is_cross_site(request: Any) -> bool:
    """Whether the browser sent ``request`` on behalf of another site (module docstring)."""
    plain = django_request(request)
    fetch_site = plain.META.get("HTTP_SEC_FETCH_SITE")
    named, sender = _sender(plain.META)
    if fetch_site is not None:
        if fetch_site.strip().lower() in THIS_SITE:
            return False
        return not _trusted(sender)
    if not named:
        return False
    return sender is None or not (sender == own_origin(plain) or _trusted(sender))


def is_direct_navigation(request: Any) -> bool:
    """Whether no page started ``request`` (``Sec-Fetch-Site: none``): typed, a
    bookmark, or a link opened from outside the browser. It may ask for a push, never
    run inside an approval window (module docstring)."""
    fetch_site = django_request(request).META.get("HTTP_SEC_FETCH_SITE")
    return fetch_site is not None and fetch_site.strip().lower() == "none"


def is_speculative(request: Any) -> bool:
    """Whether ``request`` is a prefetch or prerender, sent ahead of a click that may
    never come (module docstring)."""
    meta = django_request(request).META
    return any(str(meta.get(header, "")).strip() for header in SPECULATIVE_HEADERS)


def _sender(meta: Any) -> tuple[bool, Origin | None]:
    """Whether the browser names the sender (``Origin``, else ``Referer``), and its
    origin (None where what it names is not one origin)."""
    origin = meta.get("HTTP_ORIGIN")
    if origin is not None:
        return True, parse_origin(origin, url=False)
    referer = meta.get("HTTP_REFERER")
    if referer is not None:
        return True, parse_origin(referer, url=True)
    return False, None


def own_origin(request: HttpRequest) -> Origin | None:
    """This site's origin as the request was routed: its scheme (``is_secure()``,
    which honours ``SECURE_PROXY_SSL_HEADER``) and its host (``get_host()``, checked
    against ``ALLOWED_HOSTS``). None for a host ``ALLOWED_HOSTS`` refuses."""
    try:
        host = request.get_host()
    except DisallowedHost:
        return None
    return parse_origin(f"{request.scheme}://{host}", url=False) or None


def parse_origin(text: str, *, url: bool) -> Origin | None:
    """The origin ``text`` names: a serialized origin (``url=False``: scheme, host,
    optional port, nothing else), or an absolute http(s) URL's (``url=True``).
    None for anything a browser would not send as one: ``null``, user information,
    backslashes, whitespace, a bad port, another scheme."""
    if not text or _NOT_IN_AN_ORIGIN.search(text):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    if not url and (parts.path or parts.query or parts.fragment or text.endswith(("?", "#"))):
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def _trusted(sender: Origin | None) -> bool:
    """Whether ``sender`` is one of ``CSRF_TRUSTED_ORIGINS`` (``https://*.example.com``
    matches that domain and its subdomains, as in Django)."""
    if sender is None:
        return False
    scheme, host, port = sender
    for pattern in _trusted_patterns(settings.CSRF_TRUSTED_ORIGINS):
        p_scheme, p_host, p_port = pattern
        if p_scheme != scheme or p_port != port:
            continue
        if p_host.startswith("*."):
            domain = p_host[2:]
            if host == domain or host.endswith("." + domain):
                return True
        elif p_host == host:
            return True
    return False


def _trusted_patterns(origins: Iterable[str]) -> list[Origin]:
    patterns = []
    for origin in origins:
        wildcard = "://*." in origin
        parsed = parse_origin(origin.replace("://*.", "://", 1) if wildcard else origin, url=True)
        if parsed is not None:
            scheme, host, port = parsed
            patterns.append((scheme, f"*.{host}" if wildcard else host, port))
    return patterns


# --- URLs the app renders ---------------------------------------------------------------


def on_site_path(request: HttpRequest, *, query: bool = False) -> str | None:
    """The request's path (and with ``query`` its query string), written so that a
    browser reads it as a path of this site: percent-encoded as Django encodes paths
    (backslashes, whitespace and controls included), a leading ``//`` escaped, ``#``
    in the query encoded (it would start a fragment). None if it would still leave
    the site (it cannot; checked all the same)."""
    url = escape_leading_slashes(escape_uri_path(request.path))
    if query:
        query_string = request.META.get("QUERY_STRING", "")
        if query_string:
            url = f"{url}?{iri_to_uri(query_string).replace('#', '%23')}"
    return url if stays_on_site(url, request) else None


def stays_on_site(url: str, request: HttpRequest) -> bool:
    """Whether a browser showing a page of this site resolves ``url`` to this site,
    checked as Django's ``url_has_allowed_host_and_scheme`` checks a redirect target
    and as a browser resolves it (WHATWG: edges trimmed, tabs and newlines dropped,
    backslashes read as slashes)."""
    origin = own_origin(request)
    if origin is None or not url:
        return False
    host = request.get_host()
    if not url_has_allowed_host_and_scheme(
        url, allowed_hosts={host}, require_https=request.is_secure()
    ):
        return False
    resolved = browser_resolve(f"{request.scheme}://{host}/", url)
    return parse_origin(_origin_text(resolved), url=False) == origin


def browser_resolve(base: str, url: str) -> SplitResult:
    """``url`` resolved against ``base`` as a browser resolves an http(s) URL."""
    cleaned = _TAB_OR_NEWLINE.sub("", _EDGES.sub("", url)).replace("\\", "/")
    return urlsplit(urljoin(base, cleaned))


def _origin_text(parts: SplitResult) -> str:
    return f"{parts.scheme}://{parts.netloc}"
