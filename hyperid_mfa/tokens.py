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
import contextlib
import functools
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any, Protocol, runtime_checkable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.db import OperationalError, connections, router, transaction
from django.db.models import F
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .conf import encryption_keys, mfa_settings
from .exceptions import HyperIDConfigurationError, ServiceUnavailable, TokenUnavailable
from .models import HyperIDToken, UserModel

logger = logging.getLogger("hyperid_mfa.tokens")

#: A token that expires within this many seconds is refreshed before use.
EXPIRY_LEEWAY = 30
#: A refresh finished this recently by another caller is reused, not repeated: with
#: rotating refresh tokens a second concurrent refresh would be refused.
REFRESH_REUSE_WINDOW = 5


@runtime_checkable
class TokenProvider(Protocol):
    """What the app needs from a token provider (instantiated without arguments)."""

    def get_access_token(self, user: UserModel) -> str:
        """A current access token with the ``mfa-client`` scope, or raise TokenUnavailable."""
        ...

    def refresh_access_token(self, user: UserModel) -> str:
        """A new access token after HyperID refused the last one, or raise TokenUnavailable."""
        ...


def get_token_provider() -> TokenProvider:
    provider_class = mfa_settings.TOKEN_PROVIDER
    provider = provider_class() if isinstance(provider_class, type) else provider_class
    if not isinstance(provider, TokenProvider):
        raise HyperIDConfigurationError(
            "HYPERID_MFA['TOKEN_PROVIDER'] must name a class with get_access_token(user) "
            "and refresh_access_token(user)."
        )
    return provider


# @sensitive_variables keeps clear tokens out of Django's error reports. Without names
# it hides every variable, also in the frames the function calls (the report applies
# the nearest decorated caller's list to each frame): Fernet, the HTTP client and
# requests hold the tokens there under names of their own.

# --- encryption at rest -------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _fernet_for(keys: tuple[bytes, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError, binascii.Error) as err:
        raise HyperIDConfigurationError(
            "HYPERID_MFA['TOKEN_ENCRYPTION_KEYS'] must be Fernet keys "
            "(32 url-safe base64-encoded bytes; Fernet.generate_key() makes one)."
        ) from err


def _fernet() -> MultiFernet:
    keys = encryption_keys()
    if not keys:
        raise HyperIDConfigurationError(
            "No key to encrypt HyperID tokens: set HYPERID_MFA['TOKEN_ENCRYPTION_KEYS'] "
            "or SECRET_KEY."
        )
    return _fernet_for(keys)


@sensitive_variables()
def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode("ascii")


@sensitive_variables()
def decrypt(value: str) -> str:
    try:
        return _fernet().decrypt(value.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as err:
        raise TokenUnavailable(
            "a stored HyperID token cannot be decrypted with the configured keys"
        ) from err


def rotate_encryption(batch_size: int = 500) -> int:
    """Re-encrypt every stored token with the newest key; returns the rows rewritten.

    Run it after putting a new key first in ``TOKEN_ENCRYPTION_KEYS``; then the old
    key can be removed.
    """
    fernet = _fernet()
    rewritten = 0
    for pk in HyperIDToken.objects.values_list("pk", flat=True).iterator(chunk_size=batch_size):
        with transaction.atomic():
            row = HyperIDToken.objects.select_for_update().filter(pk=pk).first()
            if row is None:
                continue
            row.access_token_encrypted = _rotated(fernet, row.access_token_encrypted)
            if row.refresh_token_encrypted:
                row.refresh_token_encrypted = _rotated(fernet, row.refresh_token_encrypted)
            row.save(
                update_fields=["access_token_encrypted", "refresh_token_encrypted", "updated_at"]
            )
            rewritten += 1
    return rewritten


@sensitive_variables()
def _rotated(fernet: MultiFernet, ciphertext: str) -> str:
    # MultiFernet.rotate holds the clear token while it encrypts it again.
    return fernet.rotate(ciphertext.encode()).decode()


# --- storing and reading --------------------------------------------------------------


@sensitive_variables()
def jwt_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT-shaped token, unverified: used only to refresh early."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
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


def forget_tokens(user: UserModel) -> None:
    """Delete the user's stored tokens (call it on sign-out from HyperID)."""
    HyperIDToken.objects.filter(user=user).delete()


#: PostgreSQL's SQLSTATE when lock_timeout runs out (lock_not_available).
_PG_LOCK_NOT_AVAILABLE = "55P03"


def _lock_wait_expired(err: OperationalError, vendor: str) -> bool:
    if vendor == "sqlite":
        # SQLITE_BUSY once the busy timeout has run out; SQLITE_LOCKED ("database table
        # is locked") is how a shared-cache database refuses at once.
        return str(err).startswith(("database is locked", "database table is locked"))
    cause = err.__cause__
    codes = (getattr(cause, "sqlstate", None), getattr(cause, "pgcode", None))  # psycopg 3, 2
    return _PG_LOCK_NOT_AVAILABLE in codes


@contextlib.contextmanager
def _lock_waits_unavailable(using: str) -> Iterator[None]:
    """Raise ServiceUnavailable when the database gives up waiting for a lock.

    Another request holds the lock and will finish: the caller should try again soon,
    not tell the user to sign in again (nor answer 500).
    """
    try:
        yield
    except OperationalError as err:
        if not _lock_wait_expired(err, connections[using].vendor):
            raise
        raise ServiceUnavailable(
            "the database is busy: waiting for the lock on the user's HyperID token timed out"
        ) from err


class StoredTokenProvider:
    """The default provider: tokens stored with :func:`store_tokens`, refreshed on demand."""

    @sensitive_variables()
    def get_access_token(self, user: UserModel) -> str:
        tokens = HyperIDToken.objects.filter(user=user)
        with _lock_waits_unavailable(tokens.db):
            row = tokens.first()
        if row is None:
            raise TokenUnavailable("no HyperID token is stored for this user")
        if row.access_token_expired(leeway=EXPIRY_LEEWAY) and row.has_refresh_token:
            return self.refresh_access_token(user)
        return decrypt(row.access_token_encrypted)

    @sensitive_variables()
    def refresh_access_token(self, user: UserModel) -> str:
        # Imported here: the client module is the HTTP layer, loaded only when needed.
        from .client import get_client

        using = router.db_for_write(HyperIDToken)
        with _lock_waits_unavailable(using), transaction.atomic(using=using):
            # One refresh at a time per user: HyperID rotates refresh tokens, so a second
            # concurrent refresh would send a spent one and be refused. The transaction
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
