"""Where the user's HyperID access token comes from.

The app asks a *token provider* (setting ``TOKEN_PROVIDER``) for a user's token. The
default, :class:`StoredTokenProvider`, keeps tokens in the database, encrypted with
Fernet keys (``TOKEN_ENCRYPTION_KEYS``, newest first, so keys can be rotated), and
refreshes them at HyperID's OIDC token endpoint when they expire.

Call :func:`store_tokens` from the project's HyperID sign-in callback::

    from hyperid_mfa.tokens import store_tokens


    def hyperid_callback(request):
        tokens = exchange_code_for_tokens(request)  # your OIDC library
        store_tokens(
            request.user,
            tokens["access_token"],
            tokens.get("refresh_token"),
            expires_in=tokens.get("expires_in"),
        )

Projects that already keep HyperID tokens elsewhere (django-allauth's social tokens,
say) write a provider with the two methods of :class:`TokenProvider` instead.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.db import router, transaction
from django.db.models import F
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from ..adapter import TokenProvider, get_adapter
from ..conf import key_ring
from ..constants import MFA_SCOPE
from ..crypto import InvalidToken, KeyRing
from ..exceptions import (
    NoHyperIDToken,
    TokenUnavailable,
    UndecryptableTokens,
)
from ..models import HyperIDToken, UserModel
from ..services import dependencies

logger = logging.getLogger("hyperid_mfa.tokens")

#: A token that expires within this many seconds is refreshed before use.
EXPIRY_LEEWAY = 30
#: A refresh finished this recently by another caller is reused, not repeated: with
#: rotating refresh tokens a second concurrent refresh would be refused.
REFRESH_REUSE_WINDOW = 5


def get_token_provider() -> TokenProvider:
    """The provider the project's adapter gives (``TOKEN_PROVIDER`` by default)."""
    return get_adapter().get_token_provider()


# @sensitive_variables keeps clear tokens out of Django's error reports. Without names
# it hides every variable, also in the frames the function calls (the report applies
# the nearest decorated caller's list to each frame): Fernet, the HTTP client and
# requests hold the tokens there under names of their own.

# --- encryption at rest -------------------------------------------------------------


@sensitive_variables()
def encrypt(value: str) -> str:
    """``value`` encrypted under the newest key (see :mod:`hyperid_mfa.crypto`)."""
    return key_ring().encrypt(value)


@sensitive_variables()
def decrypt(value: str) -> str:
    """A stored token in clear; TokenUnavailable when no configured key reads it."""
    try:
        return key_ring().decrypt(value)
    except InvalidToken as err:
        raise TokenUnavailable(
            "a stored HyperID token cannot be decrypted with the configured keys"
        ) from err


#: Token rows read, then rewritten, per transaction by :func:`rotate_encryption`.
ROTATION_BATCH_SIZE = 500


def rotate_encryption(batch_size: int = ROTATION_BATCH_SIZE, *, dry_run: bool = False) -> int:
    """Re-encrypt under the newest key every stored token that is not already under it.

    Returns how many rows were rewritten (with ``dry_run``, how many would be; nothing
    is written). Run it after putting a new key first in ``TOKEN_ENCRYPTION_KEYS``
    (or after upgrading from a version that derived keys from ``SECRET_KEY`` by bare
    SHA-256); then the old key can be removed.

    Raises :class:`UndecryptableTokens` when some row cannot be decrypted with any
    configured key (the key it needs is missing): before rewriting anything when the
    scan finds it, after the other rows when a row changed under an unknown key
    while they were rewritten.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    ring = key_ring()
    stale, unreadable = _rows_to_rotate(ring, batch_size)
    if unreadable:
        raise UndecryptableTokens(unreadable)
    if dry_run:
        return len(stale)
    rewritten = 0
    for start in range(0, len(stale), batch_size):
        done, lost = _rotate_batch(ring, stale[start : start + batch_size])
        rewritten += done
        unreadable += lost
    if unreadable:
        # Rewritten meanwhile under a key this process does not know (a deployment
        # half done): left as they are.
        raise UndecryptableTokens(unreadable, rewritten)
    return rewritten


def _rows_to_rotate(ring: KeyRing, batch_size: int) -> tuple[list[Any], list[Any]]:
    """The pks of rows not under the newest key, and of rows no key reads."""
    stale: list[Any] = []
    unreadable: list[Any] = []
    rows = HyperIDToken.objects.order_by("pk").values_list(
        "pk", "access_token_encrypted", "refresh_token_encrypted"
    )
    for pk, *ciphertexts in rows.iterator(chunk_size=batch_size):
        present = [ciphertext for ciphertext in ciphertexts if ciphertext]
        if all(ring.is_current(ciphertext) for ciphertext in present):
            continue
        try:
            for ciphertext in present:
                ring.decrypt(ciphertext)
        except InvalidToken:
            unreadable.append(pk)
        else:
            stale.append(pk)
    return stale, unreadable


def _rotate_batch(ring: KeyRing, pks: list[Any]) -> tuple[int, list[Any]]:
    """Rewrite these rows under the newest key: (how many were, pks no key reads)."""
    rewritten = 0
    unreadable = []
    using = router.db_for_write(HyperIDToken)
    with transaction.atomic(using=using):
        # Locked, and read again, so that a refresh that stored new tokens since the
        # scan is neither overwritten with the old ones nor encrypted twice.
        rows = HyperIDToken.objects.using(using).select_for_update().filter(pk__in=pks)
        for row in rows.order_by("pk"):
            fields = [
                name
                for name in ("access_token_encrypted", "refresh_token_encrypted")
                if getattr(row, name) and not ring.is_current(getattr(row, name))
            ]
            try:
                rotated = {name: ring.rotate(getattr(row, name)) for name in fields}
            except InvalidToken:
                unreadable.append(row.pk)
                continue
            if rotated:
                for name, ciphertext in rotated.items():
                    setattr(row, name, ciphertext)
                row.save(update_fields=[*rotated, "updated_at"])
                rewritten += 1
    return rewritten, unreadable


# --- storing and reading --------------------------------------------------------------


@sensitive_variables()
def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT-shaped token, unverified ({} for anything else): used only
    for hints (when to refresh, which scopes were granted), never to trust the token."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error, RecursionError):
        return {}
    return claims if isinstance(claims, dict) else {}


@sensitive_variables()
def jwt_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT-shaped token, unverified: used only to refresh early."""
    exp = jwt_claims(token).get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not 0 < exp < 2**40:
        return None
    return datetime.fromtimestamp(exp, tz=dt_timezone.utc)


@sensitive_variables()
def _expiry(token: str, expires_in: Any) -> datetime | None:
    if type(expires_in) is int and expires_in >= 0:
        return timezone.now() + timedelta(seconds=expires_in)
    return jwt_expiry(token)


@sensitive_variables("access_token", "refresh_token")
def store_tokens(
    user: UserModel,
    access_token: str,
    refresh_token: str | None = None,
    *,
    expires_in: int | None = None,
    refresh_expires_in: int | None = None,
) -> HyperIDToken:
    """Keep the user's HyperID tokens (encrypted), replacing any stored before.

    ``expires_in``/``refresh_expires_in`` are the token endpoint's seconds; when
    ``expires_in`` is not given, the access token's own ``exp`` claim is used.
    """
    if not isinstance(access_token, str) or not access_token:
        raise ValueError("access_token must be a non-empty string")
    values = {
        "access_token_encrypted": encrypt(access_token),
        "refresh_token_encrypted": encrypt(refresh_token) if refresh_token else "",
        "access_expires_at": _expiry(access_token, expires_in),
        "refreshed_at": None,
        "refresh_expires_at": (
            timezone.now() + timedelta(seconds=refresh_expires_in)
            if type(refresh_expires_in) is int and refresh_expires_in > 0
            else None
        ),
    }
    row, _created = HyperIDToken.objects.update_or_create(user=user, defaults=values)
    return row


@sensitive_variables("access_token", "refresh_token")
def store_sign_in_tokens(
    user: UserModel,
    access_token: str,
    refresh_token: str | None = None,
    *,
    expires_in: int | None = None,
    refresh_expires_in: int | None = None,
    scope: str | None = None,
) -> bool:
    """Keep the tokens of a HyperID sign-in if they can send pushes; whether it did.

    A token without the ``mfa-client`` scope would only make HyperID refuse every
    push: it is not stored (the user's earlier tokens, if any, stay). ``scope`` is
    the token endpoint's; without it, the access token's own ``scope`` claim is read,
    and a token that says nothing about its scopes is stored.
    """
    granted = scope if scope is not None else jwt_claims(access_token).get("scope")
    if isinstance(granted, str) and MFA_SCOPE not in granted.split():
        logger.warning(
            "HyperID sign-in of user %s granted no %r scope: its tokens are not stored "
            "(ask for the scope: 'openid %s')",
            user.pk,
            MFA_SCOPE,
            MFA_SCOPE,
        )
        return False
    store_tokens(
        user,
        access_token,
        refresh_token,
        expires_in=expires_in,
        refresh_expires_in=refresh_expires_in,
    )
    logger.info("Stored the HyperID tokens of user %s from a sign-in", user.pk)
    return True


def forget_tokens(user: UserModel) -> None:
    """Delete the user's stored tokens (call it on sign-out from HyperID)."""
    HyperIDToken.objects.filter(user=user).delete()


class StoredTokenProvider:
    """The default provider: tokens stored with :func:`store_tokens`, refreshed on demand."""

    @sensitive_variables()
    def get_access_token(self, user: UserModel) -> str:
        # A database that fails (or gives up waiting for the lock of a refresh in
        # progress) raises DatabaseUnavailable / DatabaseBusy: the request should be
        # tried again soon, not told to sign in again.
        with dependencies.using_database():
            row = HyperIDToken.objects.filter(user=user).first()
        if row is None:
            raise NoHyperIDToken()
        if row.access_token_expired(leeway=EXPIRY_LEEWAY) and row.has_refresh_token:
            return self.refresh_access_token(user)
        return decrypt(row.access_token_encrypted)

    @sensitive_variables()
    def refresh_access_token(self, user: UserModel) -> str:
        # Imported here: the client module is the HTTP layer, loaded only when needed.
        from ..client.calls import get_client

        using = router.db_for_write(HyperIDToken)
        with dependencies.using_database(), transaction.atomic(using=using):
            # One refresh at a time per user: HyperID rotates refresh tokens, so a second
            # concurrent refresh would send a consumed one and be refused. The transaction
            # starts with a write because that takes the row lock on PostgreSQL and the
            # database write lock on SQLite, where select_for_update() locks nothing. A
            # read first would not do on SQLite: two deferred transactions holding read
            # locks cannot both upgrade to write, so one fails without waiting.
            tokens = HyperIDToken.objects.using(using).filter(user=user)
            if not tokens.update(refreshed_at=F("refreshed_at")):
                raise TokenUnavailable("no HyperID token is stored for this user")
            row = tokens.get()
            now = timezone.now()
            if (
                row.refreshed_at is not None
                and row.refreshed_at >= now - timedelta(seconds=REFRESH_REUSE_WINDOW)
                and not row.access_token_expired(now=now)
            ):
                return decrypt(row.access_token_encrypted)
            if not row.has_refresh_token:
                raise TokenUnavailable(
                    "the HyperID access token was refused and cannot be refreshed"
                )
            if row.refresh_expires_at is not None and row.refresh_expires_at <= now:
                raise TokenUnavailable("the HyperID refresh token has expired")
            answer = get_client().refresh_access_token(decrypt(row.refresh_token_encrypted))
            row.access_token_encrypted = encrypt(answer.access_token)
            if answer.refresh_token:
                row.refresh_token_encrypted = encrypt(answer.refresh_token)
                if answer.refresh_expires_in:
                    row.refresh_expires_at = now + timedelta(seconds=answer.refresh_expires_in)
            row.access_expires_at = _expiry(answer.access_token, answer.expires_in)
            row.refreshed_at = timezone.now()
            row.save()
        logger.info("Refreshed the HyperID access token of user %s", user.pk)
        return answer.access_token
