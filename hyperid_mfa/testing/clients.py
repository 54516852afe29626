"""The fake's one OAuth client: where it may be sent back to, and how it proves who it is.

Redirect URIs match exactly one the client registered, as HyperID matches them, or
are loopback URIs on any port (RFC 8252, section 7.3: a developer's machine, the
test suite's server), unless the fake is told to refuse those.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Mapping
from urllib.parse import unquote_plus, urlsplit

__all__ = [
    "LOOPBACK_HOSTS",
    "checked_redirect_uri",
    "client_error",
    "is_loopback_uri",
    "origin_of",
]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# Printable ASCII, no spaces: what ends up in a Location header and a CSP must not be
# able to break either. A host name or an IP literal, and an optional port.
_URI_CHARACTERS = re.compile(r"[\x21-\x7e]+\Z")
_NETLOC = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?\Z")


def checked_redirect_uri(uri: object) -> str:
    """``uri`` if a client may use it as a redirect URI; ValueError saying why not otherwise.

    RFC 6749, section 3.1.2: absolute, no fragment. Also refused here: user
    information, and characters that would need escaping in a header.
    """
    if not isinstance(uri, str) or not _URI_CHARACTERS.match(uri):
        raise ValueError(f"a redirect URI must be printable ASCII without spaces, got {uri!r}")
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not _NETLOC.match(parts.netloc):
        raise ValueError(f"a redirect URI must be an absolute http(s) URL with a host, got {uri!r}")
    if "#" in uri:
        raise ValueError(f"a redirect URI must not have a fragment, got {uri!r}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"a redirect URI's port must be 1..65535, got {uri!r}")
    return uri


def is_loopback_uri(uri: str) -> bool:
    """Whether ``uri`` is a valid redirect URI to this machine (any port, any path)."""
    try:
        checked_redirect_uri(uri)
    except ValueError:
        return False
    return (urlsplit(uri).hostname or "") in LOOPBACK_HOSTS


def origin_of(uri: str) -> str:
    """The origin (``scheme://host:port``) of a URI :func:`checked_redirect_uri` accepted."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def client_error(
    client_id: str, client_secret: str, headers: Mapping[str, str], params: Mapping[str, str]
) -> str | None:
    """Why the token request does not authenticate the client, as an OAuth error; None if it does.

    ``client_secret_basic`` or ``client_secret_post``, never both (RFC 6749, section
    2.3). ``headers`` have lower-cased names.
    """
    basic = headers.get("authorization", "")
    if not basic.lower().startswith("basic "):
        given_id, given_secret = params.get("client_id"), params.get("client_secret")
        if _matches(client_id, client_secret, given_id, given_secret):
            return None
        return "invalid_client"
    if "client_secret" in params:
        return "invalid_request"
    try:
        decoded = base64.b64decode(basic[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return "invalid_client"
    raw_id, _, raw_secret = decoded.partition(":")
    # RFC 6749 form-encodes both before base64; requests' HTTPBasicAuth, which
    # allauth and mozilla-django-oidc use, does not. Either is accepted.
    candidates = ((raw_id, raw_secret), (unquote_plus(raw_id), unquote_plus(raw_secret)))
    for given_id, given_secret in candidates:
        # A client_id in the body too must name the same client.
        if params.get("client_id", given_id) == given_id and _matches(
            client_id, client_secret, given_id, given_secret
        ):
            return None
    return "invalid_client"


def _matches(
    client_id: str, client_secret: str, given_id: str | None, given_secret: str | None
) -> bool:
    return given_id == client_id and hmac.compare_digest(
        (given_secret or "").encode("utf-8"), client_secret.encode("utf-8")
    )
