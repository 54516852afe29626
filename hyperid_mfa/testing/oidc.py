"""HyperID's OpenID Connect endpoints: for now the token endpoint's ``refresh_token`` grant.

That grant is all the app uses (its token provider refreshes the access tokens it
stores); the sign-in itself happens before the app, in tests through
:meth:`FakeHyperID.issue_tokens`. Errors follow RFC 6749, section 5.2.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qs, unquote_plus

from .answers import Answer
from .encoding import number
from .state import HyperIDState

__all__ = ["token_endpoint"]


def token_endpoint(state: HyperIDState, headers: Mapping[str, str], body: bytes) -> Answer:
    """Answer a POST to the token endpoint; ``headers`` have lower-cased names."""
    # RFC 6749: token answers must not be cached.
    no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}

    def error(status: int, code: str, subject: str | None = None) -> Answer:
        extra = dict(no_store)
        if status == 401 and headers.get("authorization", "").lower().startswith("basic "):
            extra["WWW-Authenticate"] = 'Basic realm="HyperID"'
        return Answer(status, {"error": code}, headers=extra, subject=subject)

    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return error(400, "invalid_request")
    if any(len(values) > 1 for values in form.values()):
        return error(400, "invalid_request")
    params = {key: values[0] for key, values in form.items()}
    if "grant_type" not in params:
        return error(400, "invalid_request")
    client_id, client_secret = params.get("client_id"), params.get("client_secret")
    basic = headers.get("authorization", "")
    if basic.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(basic[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return error(401, "invalid_client")
        raw_id, _, raw_secret = decoded.partition(":")
        basic_id, client_secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if client_id is not None and client_id != basic_id:
            return error(401, "invalid_client")
        client_id = basic_id
    if client_id != state.client_id or not hmac.compare_digest(
        (client_secret or "").encode("utf-8"), state.client_secret.encode("utf-8")
    ):
        return error(401, "invalid_client")
    if params["grant_type"] != "refresh_token":
        return error(400, "unsupported_grant_type")
    refresh_token = params.get("refresh_token")
    if not refresh_token:
        return error(400, "invalid_request")
    record = state.tokens.verify(refresh_token, "refresh")
    subject = None if record is None else record.subject
    if record is None or record.revoked or record.used or state.now() >= record.expires_at:
        return error(400, "invalid_grant", subject)
    access = state.mint("access", record.subject, record.scopes, state.token_ttl)
    if state.rotate_refresh_tokens:
        record.used = True
        refresh_token = state.mint(
            "refresh", record.subject, record.scopes, state.refresh_token_ttl
        )
        refresh_ttl = state.refresh_token_ttl
    else:
        refresh_ttl = max(0.0, record.expires_at - state.now())
    payload = {
        "access_token": access,
        "refresh_token": refresh_token,
        "token_type": "Bearer",
        "expires_in": number(state.token_ttl),
        "refresh_expires_in": number(refresh_ttl),
        "scope": " ".join(record.scopes),
    }
    return Answer(200, payload, headers=no_store, subject=subject)
