"""crypto: keys derived by HKDF, Fernet with rotation, tokens of the SHA-256 era still read."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from cryptography.fernet import Fernet

from hyperid_mfa import crypto
from hyperid_mfa.crypto import InvalidToken, KeyRing, check_key, derive_key, legacy_derive_key

OLD_KEY = Fernet.generate_key()
NEW_KEY = Fernet.generate_key()


def hkdf_sha256(secret: bytes, salt: bytes, info: bytes) -> bytes:
    """RFC 5869 written out, for one 32-byte block: to check derive_key against."""
    prk = hmac.new(salt, secret, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def test_derived_keys_are_hkdf_sha256_with_this_apps_salt_and_purpose():
    expected = hkdf_sha256(b"a-secret", crypto.HKDF_SALT, crypto.HKDF_INFO)
    assert derive_key("a-secret") == base64.urlsafe_b64encode(expected)
    assert derive_key(b"a-secret") == derive_key("a-secret")
    assert b"hyperid" in crypto.HKDF_SALT
    assert b"tokens" in crypto.HKDF_INFO


def test_derived_keys_are_fernet_keys_that_differ_by_secret():
    assert check_key(derive_key("one")) == derive_key("one")
    assert derive_key("one") != derive_key("two")


def test_the_legacy_derivation_is_the_bare_sha256_of_earlier_versions():
    digest = hashlib.sha256(b"hyperid_mfa.token-encryption\x00a-secret").digest()
    assert legacy_derive_key("a-secret") == base64.urlsafe_b64encode(digest)
    assert legacy_derive_key("a-secret") != derive_key("a-secret")


@pytest.mark.parametrize("key", ["short", b"", "x" * 44, 42, None])
def test_what_is_not_a_fernet_key_is_a_value_error(key):
    with pytest.raises(ValueError, match="not a Fernet key"):
        check_key(key)


def test_a_ring_encrypts_with_its_first_key_and_decrypts_with_any():
    ring = KeyRing((NEW_KEY, OLD_KEY))
    ciphertext = ring.encrypt("clear.token")
    assert "clear.token" not in ciphertext
    assert Fernet(NEW_KEY).decrypt(ciphertext.encode()) == b"clear.token"
    old = Fernet(OLD_KEY).encrypt(b"older.token").decode()
    assert ring.decrypt(old) == "older.token"


def test_decrypt_only_keys_read_but_never_write():
    ring = KeyRing((NEW_KEY,), decrypt_only=(OLD_KEY,))
    old = Fernet(OLD_KEY).encrypt(b"older.token").decode()
    assert ring.decrypt(old) == "older.token"
    assert not ring.is_current(old)
    rotated = ring.rotate(old)
    assert ring.is_current(rotated)
    assert Fernet(NEW_KEY).decrypt(rotated.encode()) == b"older.token"
    with pytest.raises(InvalidToken):
        Fernet(OLD_KEY).decrypt(ring.encrypt("new.token").encode())


def test_a_derived_ring_reads_tokens_of_both_derivations_and_writes_hkdf():
    ring = KeyRing.derived(["current-secret", "", "old-secret"])
    assert ring.keys == (derive_key("current-secret"), derive_key("old-secret"))
    assert ring.decrypt_only == (
        legacy_derive_key("current-secret"),
        legacy_derive_key("old-secret"),
    )
    legacy = Fernet(legacy_derive_key("old-secret")).encrypt(b"stored.long.ago").decode()
    assert ring.decrypt(legacy) == "stored.long.ago"
    assert Fernet(derive_key("current-secret")).decrypt(ring.rotate(legacy).encode())


@pytest.mark.parametrize(
    "ciphertext",
    ["not-a-token", "", "gAAAA\u00e9", Fernet(OLD_KEY).encrypt(b"x")],
    # Fernet tokens differ from run to run: ids that do not (mutmut and xdist find a
    # test again by its id).
    ids=["not-a-token", "empty", "not-base64", "another-key"],
)
def test_what_no_key_reads_is_invalid_token(ciphertext):
    if isinstance(ciphertext, bytes):
        ciphertext = ciphertext.decode()
    ring = KeyRing((NEW_KEY,))
    with pytest.raises(InvalidToken):
        ring.decrypt(ciphertext)
    with pytest.raises(InvalidToken):
        ring.rotate(ciphertext)
    assert not ring.is_current(ciphertext)


def test_a_ring_needs_a_key_and_only_fernet_keys():
    with pytest.raises(ValueError, match="at least one key"):
        KeyRing(())
    with pytest.raises(ValueError, match="not a Fernet key"):
        KeyRing((NEW_KEY,), decrypt_only=(b"short",))


def test_a_ring_keeps_its_keys_out_of_its_repr():
    assert NEW_KEY.decode() not in repr(KeyRing((NEW_KEY,), decrypt_only=(OLD_KEY,)))
    assert OLD_KEY.decode() not in repr(KeyRing((NEW_KEY,), decrypt_only=(OLD_KEY,)))


def test_rotation_keeps_the_tokens_timestamp():
    old = Fernet(OLD_KEY).encrypt_at_time(b"t", current_time=1_000_000)
    rotated = KeyRing((NEW_KEY, OLD_KEY)).rotate(old.decode())
    assert Fernet(NEW_KEY).extract_timestamp(rotated.encode()) == 1_000_000
