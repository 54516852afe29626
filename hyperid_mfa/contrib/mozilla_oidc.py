"""mozilla-django-oidc: HyperID sign-ins that check every ID token, find the user by
their HyperID account, and keep the tokens for the gate.

Put the backend in place of mozilla-django-oidc's own::

    AUTHENTICATION_BACKENDS = ["hyperid_mfa.contrib.mozilla_oidc.HyperIDOIDCBackend"]
    OIDC_RP_SCOPES = "openid email mfa-client"
    OIDC_RP_SIGN_ALGO = "RS256"
    OIDC_OP_JWKS_ENDPOINT = ISSUER + "/protocol/openid-connect/certs"
    # ... and the other OIDC_OP_* endpoints, OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET

Beyond what mozilla-django-oidc does (the signature, ``exp`` when present, the
nonce), every ID token must name ``HYPERID_MFA["ISSUER"]`` as ``iss``, this client
alone as ``aud`` (and as ``azp`` when present), carry ``exp``, ``iat``, ``sub`` and
the nonce of this browser's sign-in; anything else signs nobody in. The userinfo
endpoint must speak of the same ``sub``.

The user is the one linked to that HyperID account (:class:`HyperIDAccount`), never
one found by email: the library's default would hand the sign-in, and its tokens,
to any local account holding the same address. A new HyperID account gets a new
user (``OIDC_CREATE_USER``), linked on the spot.

Every sign-in then stores the access and refresh tokens, encrypted, with
:func:`hyperid_mfa.tokens.store_sign_in_tokens` (not in the session, as
``OIDC_STORE_ACCESS_TOKEN`` would), and no error report of the sign-in shows a
token (:func:`hyperid_mfa.sensitive.protect_sign_in`).
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
from typing import Any

import requests
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db import IntegrityError, router, transaction
from django.utils.crypto import salted_hmac
from django.views.decorators.debug import sensitive_variables

from ..conf import mfa_settings
from ..exceptions import MissingExtra
from ..models import HyperIDAccount
from ..sensitive import Secret, protect_sign_in
from ..tokens.store import store_sign_in_tokens

try:
    import jwt
    from mozilla_django_oidc.auth import OIDCAuthenticationBackend
except ImportError as err:  # the library, or what it verifies ID tokens with
    raise MissingExtra("oidc", __name__, err.name) from err

logger = logging.getLogger(__name__)

#: OpenID Connect Core, section 2: ``sub`` is at most 255 ASCII characters.
MAX_SUBJECT_LENGTH = 255


class HyperIDOIDCBackend(OIDCAuthenticationBackend):
    """``OIDCAuthenticationBackend`` for HyperID: checked ID tokens, users found by
    their HyperID account, tokens stored for the gate."""

    # What this sign-in learnt, for the steps that follow (mozilla-django-oidc makes
    # a backend for each authenticate() call).
    _sign_in_tokens: _SignInTokens | None = None
    _subject: str | None = None

    # Every variable below is hidden from error reports: the library's frames under
    # this one hold the tokens, the client secret and the code in clear.
    @sensitive_variables()
    def authenticate(self, request: Any, **kwargs: Any) -> Any:
        if request is not None and request.GET.get("code") and request.GET.get("state"):
            # A sign-in (the library answers None to anything else): its report hides
            # every frame's variables, with DEBUG on too.
            protect_sign_in(request)
        self._sign_in_tokens = None
        self._subject = None
        return super().authenticate(request, **kwargs)

    @sensitive_variables()
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
        if not isinstance(token_info, dict):
            raise SuspiciousOperation("HyperID's token answer is not a JSON object")
        self._sign_in_tokens = _SignInTokens.read(token_info)
        return token_info

    @sensitive_variables()
    def verify_token(self, token: str, **kwargs: Any) -> Any:
        if "nonce" not in kwargs:
            # Not the ID token: the userinfo endpoint answered a JWT.
            return super().verify_token(token, **kwargs)
        try:
            claims = super().verify_token(token, **kwargs)
        except (jwt.InvalidTokenError, jwt.PyJWKError, KeyError) as error:
            # PyJWT's refusals that the library lets through (an expired token, one
            # not yet valid) and its KeyError on a header without "kid".
            raise SuspiciousOperation(f"HyperID ID token refused: {type(error).__name__}") from None
        problem = id_token_problem(
            claims,
            issuer=expected_issuer(),
            client_id=self.OIDC_RP_CLIENT_ID,
            nonce=kwargs["nonce"],
        )
        if problem is not None:
            raise SuspiciousOperation(f"HyperID ID token refused: {problem}")
        self._subject = claims["sub"]
        return claims

    def verify_claims(self, claims: Any) -> bool:
        # OpenID Connect Core, section 5.3.2: userinfo about another sub is not used.
        if not isinstance(claims, dict) or claims.get("sub") != self._subject:
            logger.warning("HyperID's userinfo names another subject than the ID token")
            return False
        verified: bool = super().verify_claims(claims)
        return verified

    def describe_user_by_claims(self, claims: Any) -> str:
        return f"HyperID subject {self._subject}"

    def filter_users_by_claims(self, claims: Any) -> Any:
        """The user linked to the sign-in's HyperID account; never a match by email."""
        if self._subject is None:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(
            hyperid_accounts__issuer=expected_issuer(),
            hyperid_accounts__subject=self._subject,
        )

    def create_user(self, claims: Any) -> Any:
        """A new user for a HyperID account signing in for the first time, linked to
        it (or :meth:`existing_user_for`'s, linked)."""
        subject = self._subject
        if subject is None:  # verify_token ran first, or there would be no claims
            raise SuspiciousOperation("no verified HyperID subject to create a user for")
        issuer = expected_issuer()
        try:
            with transaction.atomic(using=router.db_for_write(HyperIDAccount)):
                user = self.existing_user_for(claims)
                if user is None:
                    user = super().create_user(claims)
                HyperIDAccount.objects.create(user=user, issuer=issuer, subject=subject)
        except IntegrityError:
            # Another sign-in of the same HyperID account linked it meanwhile, or the
            # username (or a link of that user's) is taken.
            linked = self.filter_users_by_claims(claims).first()
            if linked is not None:
                return linked
            raise SuspiciousOperation(
                "a user for this HyperID account could not be created: its username "
                "is taken, or the user is linked to another HyperID account"
            ) from None
        logger.info("Linked a new HyperID account to user %s", user.pk)
        return user

    def existing_user_for(self, claims: Any) -> Any:
        """An existing user to link a HyperID account to on its first sign-in, or None
        to create a new user (the default).

        Override it only where the project knows that user owns the HyperID account:
        matching by an email address the site never verified would hand the sign-in
        to whoever registered that address first.
        """
        return None

    def get_username(self, claims: Any) -> str:
        """``OIDC_USERNAME_ALGO``'s, else one derived from the HyperID account, which
        nobody can register before it signs in (unlike one derived from its email)."""
        if self.get_settings("OIDC_USERNAME_ALGO", None):
            username: str = super().get_username(claims)
            return username
        digest = salted_hmac(
            "hyperid_mfa.contrib.mozilla_oidc.username",
            f"{expected_issuer()}\n{self._subject}",
            algorithm="sha256",
        ).hexdigest()
        return f"hyperid-{digest[:32]}"

    @sensitive_variables()
    def get_or_create_user(self, access_token: str, id_token: str, payload: Any) -> Any:
        user = super().get_or_create_user(access_token, id_token, payload)
        tokens, self._sign_in_tokens = self._sign_in_tokens, None
        if user is not None and tokens is not None and tokens.access == Secret(access_token):
            store_sign_in_tokens(
                user,
                tokens.access.reveal(),
                tokens.refresh.reveal() if tokens.refresh else None,
                expires_in=tokens.expires_in,
                refresh_expires_in=tokens.refresh_expires_in,
                scope=tokens.scope,
            )
        return user


@dataclasses.dataclass(frozen=True)
class _SignInTokens:
    """What a sign-in's token answer holds for the gate, the tokens as Secrets."""

    access: Secret
    refresh: Secret | None
    expires_in: int | None
    refresh_expires_in: int | None
    scope: str | None

    @classmethod
    @sensitive_variables()
    def read(cls, answer: dict[str, Any]) -> _SignInTokens | None:
        access, refresh = answer.get("access_token"), answer.get("refresh_token")
        if not isinstance(access, str) or not access:
            return None
        scope = answer.get("scope")
        return cls(
            access=Secret(access),
            refresh=Secret(refresh) if isinstance(refresh, str) and refresh else None,
            expires_in=_seconds(answer.get("expires_in")),
            refresh_expires_in=_seconds(answer.get("refresh_expires_in")),
            scope=scope if isinstance(scope, str) else None,
        )


def expected_issuer() -> str:
    """The ``iss`` of HyperID's ID tokens: ``HYPERID_MFA["ISSUER"]``."""
    issuer: str = mfa_settings.ISSUER
    return issuer.rstrip("/")


def id_token_problem(claims: Any, *, issuer: str, client_id: str, nonce: str | None) -> str | None:
    """What makes ``claims``, a signed ID token's, unfit to sign anyone in (OpenID
    Connect Core, section 3.1.3.7), or None.

    The signature, and ``exp``/``iat``/``nbf`` where present, are checked before.
    """
    if not isinstance(claims, dict):
        return "its claims are not a JSON object"
    if claims.get("iss") != issuer:
        return "it is issued by another issuer than HYPERID_MFA['ISSUER']"
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        return "it is for another audience than OIDC_RP_CLIENT_ID"
    if any(other != client_id for other in audiences):
        return "it is also for other audiences"
    if "azp" in claims and claims["azp"] != client_id:
        return "it is authorised for another client (azp)"
    for claim in ("exp", "iat"):
        if isinstance(claims.get(claim), bool) or not isinstance(claims.get(claim), (int, float)):
            return f"it has no {claim}"
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_LENGTH:
        return "it names no valid subject (sub)"
    if claims.get("typ", "ID") != "ID":
        return "it is not an ID token (typ)"
    if not isinstance(nonce, str) or not nonce:
        # OIDC_USE_NONCE = False: nothing ties the ID token to this browser's sign-in.
        logger.error(
            "HyperIDOIDCBackend refuses every sign-in while OIDC_USE_NONCE is False: "
            "remove the setting"
        )
        return "the sign-in has no nonce"
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not hmac.compare_digest(
        token_nonce.encode(), nonce.encode()
    ):
        return "its nonce is not this sign-in's"
    return None


def _seconds(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None
