"""The fake as an OpenID provider at its issuer: discovery, keys, userinfo, and the way in.

Below the issuer, at HyperID's (Keycloak's) paths:

- ``GET /.well-known/openid-configuration``: the discovery document;
- ``GET|POST /protocol/openid-connect/auth``: the sign-in (:mod:`.signin`);
- ``POST /protocol/openid-connect/token``: the token endpoint (:mod:`.oidc`; the
  router sends it there, as a HyperID call the app makes);
- ``GET|POST /protocol/openid-connect/userinfo``: the user's claims, for a bearer
  access token carrying ``openid``;
- ``GET /protocol/openid-connect/certs``: the JWK Set that verifies ID tokens;
- ``GET|POST /protocol/openid-connect/logout``: the end-session endpoint.

These endpoints serve the sign-in, not the app's calls to HyperID: unlike the token
endpoint, they are neither logged in ``FakeHyperID.calls`` nor bent by faults.

Times in ID tokens are the fake's clock; relying parties (PyJWT in allauth,
mozilla-django-oidc) check ``exp`` and ``iat`` against the time of day, so a fake whose
clock is pinned or advanced hands them tokens they refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..constants import TOKEN_ENDPOINT_PATH
from .oidc import SCOPES_SUPPORTED, user_claims
from .responses import FakeResponse, json_response
from .signin import authorize, end_session
from .state import HyperIDState

__all__ = [
    "AUTHORIZATION_PATH",
    "DISCOVERY_PATH",
    "END_SESSION_PATH",
    "JWKS_PATH",
    "USERINFO_PATH",
    "answer",
    "openid_configuration",
]

# Relative to the issuer, like constants.TOKEN_ENDPOINT_PATH.
DISCOVERY_PATH = "/.well-known/openid-configuration"
AUTHORIZATION_PATH = "/protocol/openid-connect/auth"
USERINFO_PATH = "/protocol/openid-connect/userinfo"
JWKS_PATH = "/protocol/openid-connect/certs"
END_SESSION_PATH = "/protocol/openid-connect/logout"

_READS = ("GET", "HEAD")


def openid_configuration(issuer: str) -> dict[str, Any]:
    """The discovery document of a provider at ``issuer`` (OpenID Connect Discovery 1.0)."""
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + AUTHORIZATION_PATH,
        "token_endpoint": issuer + TOKEN_ENDPOINT_PATH,
        "userinfo_endpoint": issuer + USERINFO_PATH,
        "jwks_uri": issuer + JWKS_PATH,
        "end_session_endpoint": issuer + END_SESSION_PATH,
        "scopes_supported": list(SCOPES_SUPPORTED),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "azp",
            "at_hash",
            "preferred_username",
            "name",
            "email",
            "email_verified",
        ],
        "prompt_values_supported": ["none", "login"],
        "authorization_response_iss_parameter_supported": True,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }


def answer(
    state: HyperIDState,
    method: str,
    route: str,
    endpoint: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> FakeResponse | None:
    """Answer a request to ``endpoint`` (the path below the issuer's); None if it is none of these.

    ``route`` is the request's whole path; ``headers`` have lower-cased names.
    """
    if endpoint == AUTHORIZATION_PATH:
        return authorize(state, method, route, query, headers, body)
    if endpoint == END_SESSION_PATH:
        return end_session(state, method, query, headers, body)
    if endpoint == USERINFO_PATH:
        if method not in (*_READS, "POST"):
            return _not_allowed("GET, HEAD, POST")
        return _userinfo(state, headers)
    if endpoint == DISCOVERY_PATH:
        if method not in _READS:
            return _not_allowed("GET, HEAD")
        return json_response(200, openid_configuration(state.current_issuer()))
    if endpoint == JWKS_PATH:
        if method not in _READS:
            return _not_allowed("GET, HEAD")
        return json_response(200, state.signing_key.jwks())
    return None


def _userinfo(state: HyperIDState, headers: Mapping[str, str]) -> FakeResponse:
    """OpenID Connect Core, section 5.3; errors as RFC 6750, section 3 has them."""
    record = state.tokens.bearer(headers)
    if record is None or record.revoked or state.now() >= record.expires_at:
        # Without any bearer token, the challenge carries no error code (RFC 6750, 3.1).
        sent = headers.get("authorization", "").lower().startswith("bearer ")
        challenge = 'Bearer realm="HyperID"' + (', error="invalid_token"' if sent else "")
        return json_response(
            401,
            {"error": "invalid_token" if sent else "invalid_request"},
            {"WWW-Authenticate": challenge, "Cache-Control": "no-store"},
        )
    if "openid" not in record.scopes:
        return json_response(
            403,
            {"error": "insufficient_scope"},
            {
                "WWW-Authenticate": 'Bearer realm="HyperID", error="insufficient_scope", '
                'scope="openid"',
                "Cache-Control": "no-store",
            },
        )
    return json_response(
        200, user_claims(record.subject, record.scopes), {"Cache-Control": "no-store"}
    )


def _not_allowed(allow: str) -> FakeResponse:
    return json_response(405, {"error": "method_not_allowed"}, {"Allow": allow})
