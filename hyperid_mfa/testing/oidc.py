"""HyperID's token endpoint: the ``authorization_code`` and ``refresh_token`` grants.

A client trades the code of a sign-in (:mod:`.signin`) for tokens once, within
:data:`AUTHORIZATION_CODE_TTL` seconds, with the redirect URI and the PKCE verifier
the code is bound to; the app's token provider then refreshes the access token it
stores. ID tokens come with every answer whose tokens carry ``openid``. Errors follow
RFC 6749, section 5.2.

Also here: the scopes HyperID offers and the claims each one releases, which the ID
token and the userinfo endpoint (:mod:`.provider`) share.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from ..constants import MFA_SCOPE
from .clients import client_error
from .encoding import b64url_encode, number
from .grants import AuthorizationCode
from .responses import Answer
from .state import HyperIDState

__all__ = [
    "AUTHORIZATION_CODE_TTL",
    "SCOPES_SUPPORTED",
    "email_of",
    "token_endpoint",
    "user_claims",
]

#: Seconds, by the fake's clock, a client has to trade an authorization code.
AUTHORIZATION_CODE_TTL = 60.0

#: The scopes a client may ask for; others are ignored (RFC 6749, section 3.3).
SCOPES_SUPPORTED: tuple[str, ...] = ("openid", "profile", "email", MFA_SCOPE)

#: The domain of the fake's made-up email addresses (a reserved TLD: mail goes nowhere).
EMAIL_DOMAIN = "hyperid.test"

# RFC 7636, section 4.1.
_CODE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}\Z")

# RFC 6749: token answers must not be cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def email_of(subject: str) -> str:
    return f"{subject}@{EMAIL_DOMAIN}"


def user_claims(subject: str, scopes: tuple[str, ...]) -> dict[str, Any]:
    """What the ID token and the userinfo endpoint say of the user, by granted scope."""
    claims: dict[str, Any] = {"sub": subject}
    if "profile" in scopes:
        claims.update(preferred_username=subject, name=subject)
    if "email" in scopes:
        claims.update(email=email_of(subject), email_verified=True)
    return claims


def token_endpoint(state: HyperIDState, headers: Mapping[str, str], body: bytes) -> Answer:
    """Answer a POST to the token endpoint; ``headers`` have lower-cased names."""
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return _error(headers, 400, "invalid_request")
    if any(len(values) > 1 for values in form.values()):
        return _error(headers, 400, "invalid_request")
    params = {key: values[0] for key, values in form.items()}
    if "grant_type" not in params:
        return _error(headers, 400, "invalid_request")
    refused = client_error(state.client_id, state.client_secret, headers, params)
    if refused is not None:
        return _error(headers, 401 if refused == "invalid_client" else 400, refused)
    if params["grant_type"] == "refresh_token":
        return _refresh(state, headers, params)
    if params["grant_type"] == "authorization_code":
        return _authorization_code(state, headers, params)
    return _error(headers, 400, "unsupported_grant_type")


def _refresh(state: HyperIDState, headers: Mapping[str, str], params: dict[str, str]) -> Answer:
    refresh_token = params.get("refresh_token")
    if not refresh_token:
        return _error(headers, 400, "invalid_request")
    record = state.tokens.verify(refresh_token, "refresh")
    subject = None if record is None else record.subject
    if record is None or record.revoked or record.used or state.now() >= record.expires_at:
        return _error(headers, 400, "invalid_grant", subject=subject)
    if state.rotate_refresh_tokens:
        record.used = True
        refresh_ttl = state.refresh_token_ttl
        new_refresh = None
    else:
        refresh_ttl = max(0.0, record.expires_at - state.now())
        new_refresh = refresh_token
    # OpenID Connect Core, section 12.2: a refreshed ID token keeps auth_time and
    # carries no nonce.
    return _tokens(
        state,
        record.subject,
        record.scopes,
        auth_time=record.auth_time,
        grant=record.grant,
        nonce=None,
        refresh_token=new_refresh,
        refresh_ttl=refresh_ttl,
    )


def _authorization_code(
    state: HyperIDState, headers: Mapping[str, str], params: dict[str, str]
) -> Answer:
    code, redirect_uri = params.get("code"), params.get("redirect_uri")
    if not code or not redirect_uri:
        return _error(headers, 400, "invalid_request", "code and redirect_uri are required")
    record = state.grants.code(code)
    if record is None:
        return _error(headers, 400, "invalid_grant", "unknown authorization code")
    if record.used:
        # RFC 6749, section 4.1.2: a code used twice may have been stolen, so what
        # it brought the first time is withdrawn.
        state.tokens.revoke_grant(record.grant)
        return _refused_code(
            headers, record, "authorization code already used; its tokens are revoked"
        )
    # Consumed by any attempt, failed ones included, as HyperID's server does it.
    record.used = True
    problem = _code_problem(state, record, params)
    if problem is not None:
        return _refused_code(headers, record, problem)
    return _tokens(
        state,
        record.subject,
        record.request.scopes,
        auth_time=record.auth_time,
        grant=record.grant,
        nonce=record.request.nonce,
        refresh_token=None,
        refresh_ttl=state.refresh_token_ttl,
    )


def _code_problem(
    state: HyperIDState, record: AuthorizationCode, params: dict[str, str]
) -> str | None:
    """Why the code cannot be traded in this request, or None if it can."""
    if state.now() >= record.expires_at:
        return "authorization code expired"
    if record.request.client_id != state.client_id:  # the client authenticated just now
        return "authorization code issued to another client"
    if params["redirect_uri"] != record.request.redirect_uri:
        return "redirect_uri differs from the authorization request's"
    verifier = params.get("code_verifier")
    challenge = record.request.code_challenge
    if challenge is None:
        # RFC 9700, section 4.8.2: else an attacker could strip PKCE unnoticed.
        return None if verifier is None else "code_verifier without a code_challenge"
    if verifier is None:
        return "code_verifier is required: the authorization request had a code_challenge"
    if not _CODE_VERIFIER.match(verifier):
        return "code_verifier is malformed (RFC 7636: 43 to 128 unreserved characters)"
    computed = b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())
    if not hmac.compare_digest(computed, challenge):
        return "code_verifier does not match the code_challenge"
    return None


def _tokens(
    state: HyperIDState,
    subject: str,
    scopes: tuple[str, ...],
    *,
    auth_time: float,
    grant: str | None,
    nonce: str | None,
    refresh_token: str | None,
    refresh_ttl: float,
) -> Answer:
    """The success answer: new tokens (a new refresh token unless ``refresh_token``)."""
    access = state.mint(
        "access", subject, scopes, state.token_ttl, auth_time=auth_time, grant=grant
    )
    if refresh_token is None:
        refresh_token = state.mint(
            "refresh", subject, scopes, state.refresh_token_ttl, auth_time=auth_time, grant=grant
        )
    payload: dict[str, Any] = {
        "access_token": access,
        "refresh_token": refresh_token,
        "token_type": "Bearer",
        "expires_in": number(state.token_ttl),
        "refresh_expires_in": number(refresh_ttl),
        "scope": " ".join(scopes),
    }
    if "openid" in scopes:
        payload["id_token"] = _id_token(state, subject, scopes, auth_time, nonce, access)
    return Answer(200, payload, headers=dict(_NO_STORE), subject=subject)


def _id_token(
    state: HyperIDState,
    subject: str,
    scopes: tuple[str, ...],
    auth_time: float,
    nonce: str | None,
    access_token: str,
) -> str:
    now = state.now()
    # OpenID Connect Core, section 3.3.2.11: the left half of the access token's SHA-256.
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    claims: dict[str, Any] = {
        "iss": state.current_issuer(),
        **user_claims(subject, scopes),
        "aud": state.client_id,
        "azp": state.client_id,
        "exp": math.floor(now + state.token_ttl),
        "iat": math.floor(now),
        "auth_time": math.floor(auth_time),
        # Unique: allauth refuses an ID token whose jti it has seen (replay).
        "jti": str(uuid.uuid4()),
        "typ": "ID",
        "at_hash": b64url_encode(digest[: len(digest) // 2]),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    return state.signing_key.sign(claims)


def _refused_code(headers: Mapping[str, str], record: AuthorizationCode, why: str) -> Answer:
    return _error(headers, 400, "invalid_grant", why, subject=record.subject)


def _error(
    headers: Mapping[str, str],
    status: int,
    code: str,
    description: str | None = None,
    *,
    subject: str | None = None,
) -> Answer:
    extra = dict(_NO_STORE)
    if status == 401 and headers.get("authorization", "").lower().startswith("basic "):
        extra["WWW-Authenticate"] = 'Basic realm="HyperID"'
    payload = {"error": code}
    if description is not None:
        payload["error_description"] = description
    return Answer(status, payload, headers=extra, subject=subject)
