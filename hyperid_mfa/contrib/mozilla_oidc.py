"""mozilla-django-oidc: keep the tokens of every HyperID sign-in for the gate.

Put the backend in place of mozilla-django-oidc's own::

    AUTHENTICATION_BACKENDS = ["hyperid_mfa.contrib.mozilla_oidc.HyperIDOIDCBackend"]
    OIDC_RP_SCOPES = "openid email mfa-client"
    OIDC_RP_SIGN_ALGO = "RS256"
    OIDC_OP_JWKS_ENDPOINT = ISSUER + "/protocol/openid-connect/certs"
    # ... and the other OIDC_OP_* endpoints, OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET

Every sign-in then stores the access and refresh tokens, encrypted, with
:func:`hyperid_mfa.tokens.store_sign_in_tokens` (not in the session, as
``OIDC_STORE_ACCESS_TOKEN`` would).
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.core.exceptions import PermissionDenied

from ..exceptions import MissingExtra
from ..tokens import store_sign_in_tokens

try:
    from mozilla_django_oidc.auth import OIDCAuthenticationBackend
except ImportError as err:  # the library, or what it verifies ID tokens with
    raise MissingExtra("oidc", __name__, err.name) from err

logger = logging.getLogger(__name__)


class HyperIDOIDCBackend(OIDCAuthenticationBackend):
    """``OIDCAuthenticationBackend`` that stores the user's HyperID tokens."""

    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        # The token answer holds the refresh token, which the base class drops: keep
        # it for the user this sign-in ends with.
        try:
            token_info: dict[str, Any] = super().get_token(payload)
        except requests.HTTPError as error:
            # HyperID refused the code (expired, replayed, another client's): the
            # sign-in failed, which the callback answers with its failure redirect,
            # not a 500. The answer's body is not logged: it may echo the request.
            status = error.response.status_code if error.response is not None else None
            logger.warning("HyperID refused the sign-in code: HTTP %s", status)
            raise PermissionDenied("HyperID refused the sign-in code") from None
        self._hyperid_token_info: dict[str, Any] | None = token_info
        return token_info

    def get_or_create_user(self, access_token: str, id_token: str, payload: Any) -> Any:
        user = super().get_or_create_user(access_token, id_token, payload)
        token_info = getattr(self, "_hyperid_token_info", None) or {}
        self._hyperid_token_info = None
        if user is not None and token_info.get("access_token") == access_token:
            store_sign_in_tokens(
                user,
                access_token,
                token_info.get("refresh_token"),
                expires_in=_seconds(token_info.get("expires_in")),
                refresh_expires_in=_seconds(token_info.get("refresh_expires_in")),
                scope=token_info.get("scope") if isinstance(token_info.get("scope"), str) else None,
            )
        return user


def _seconds(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None
