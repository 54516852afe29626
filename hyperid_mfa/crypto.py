"""Keys and encryption of the HyperID tokens kept at rest. Settings-free.

Tokens are encrypted with Fernet. A :class:`KeyRing` encrypts with its first key
and decrypts with any of its keys, so keys rotate: put a new key first, run
``manage.py hyperid_mfa_rotate_keys`` (re-encrypts every stored token under it),
then drop the old key.

Projects that set no ``TOKEN_ENCRYPTION_KEYS`` get keys derived from ``SECRET_KEY``
and ``SECRET_KEY_FALLBACKS`` with HKDF-SHA256 (:func:`derive_key`). Versions before
HKDF derived them with one bare SHA-256 (:func:`legacy_derive_key`); tokens stored
then still decrypt, with decrypt-only keys tried after the others, and
``hyperid_mfa_rotate_keys`` moves them under the HKDF key. Once it has run, the
legacy keys read nothing any more.

``conf`` chooses the keys from the settings (``conf.key_ring()``); ``tokens``
encrypts and decrypts the stored rows with them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.views.decorators.debug import sensitive_variables

__all__ = ["InvalidToken", "KeyRing", "check_key", "derive_key", "legacy_derive_key"]

# HKDF inputs that tie a derived key to this app and to this one purpose: a key
# derived from SECRET_KEY for anything else (by Django or another app) differs.
# Changing either makes every token stored under a derived key unreadable.
HKDF_SALT = b"django-hyperid-mfa"
HKDF_INFO = b"hyperid_mfa: Fernet key for HyperID tokens at rest, v1"

# The prefix of the bare SHA-256 that derived keys before HKDF.
_LEGACY_PREFIX = b"hyperid_mfa.token-encryption\x00"


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


@sensitive_variables()
def derive_key(secret: str | bytes) -> bytes:
    """The Fernet key derived from a Django secret key (HKDF-SHA256)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(_as_bytes(secret)))


@sensitive_variables()
def legacy_derive_key(secret: str | bytes) -> bytes:
    """The key earlier versions derived from a secret key: used to decrypt only."""
    digest = hashlib.sha256(_LEGACY_PREFIX + _as_bytes(secret)).digest()
    return base64.urlsafe_b64encode(digest)


def check_key(key: str | bytes) -> bytes:
    """``key`` as bytes if it is a Fernet key (32 url-safe base64 bytes); else ValueError."""
    try:
        Fernet(key)
    except (ValueError, TypeError, binascii.Error) as err:
        raise ValueError(
            "not a Fernet key (32 url-safe base64-encoded bytes; "
            "cryptography.fernet.Fernet.generate_key() makes one)"
        ) from err
    return _as_bytes(key)


@dataclass(frozen=True)
class KeyRing:
    """Fernet keys, newest first: encrypts with the first, decrypts with any.

    ``decrypt_only`` keys are tried after ``keys`` and never encrypt.
    Methods raise :class:`InvalidToken` for a token no key reads.
    """

    # Kept out of repr: error reports show the local variables that hold a ring.
    keys: tuple[bytes, ...] = field(repr=False)
    decrypt_only: tuple[bytes, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a key ring needs at least one key")
        for key in (*self.keys, *self.decrypt_only):
            check_key(key)

    @classmethod
    def derived(cls, secrets: Iterable[str | bytes]) -> KeyRing:
        """Keys derived from Django's secret keys (current first, then fallbacks), and
        the legacy derivations of the same secrets to decrypt tokens stored before."""
        usable = [secret for secret in secrets if secret]
        return cls(
            keys=tuple(derive_key(secret) for secret in usable),
            decrypt_only=tuple(legacy_derive_key(secret) for secret in usable),
        )

    @cached_property
    def _any_key(self) -> MultiFernet:
        return MultiFernet([Fernet(key) for key in (*self.keys, *self.decrypt_only)])

    @cached_property
    def _first_key(self) -> Fernet:
        return Fernet(self.keys[0])

    @sensitive_variables()
    def encrypt(self, plaintext: str) -> str:
        return self._first_key.encrypt(plaintext.encode()).decode("ascii")

    @sensitive_variables()
    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._any_key.decrypt(ciphertext.encode("ascii")).decode()
        except UnicodeError:
            raise InvalidToken from None

    def is_current(self, ciphertext: str) -> bool:
        """Whether ``ciphertext`` is encrypted under the first key (needs no rotation)."""
        try:
            self._first_key.decrypt(ciphertext.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True

    @sensitive_variables()
    def rotate(self, ciphertext: str) -> str:
        """``ciphertext`` encrypted again under the first key (its timestamp kept)."""
        try:
            # Holds the clear token while it encrypts it again.
            return self._any_key.rotate(ciphertext.encode("ascii")).decode("ascii")
        except UnicodeError:
            raise InvalidToken from None
