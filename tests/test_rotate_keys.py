"""``manage.py hyperid_mfa_rotate_keys``: stored tokens move under the newest key."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.test import override_settings

from hyperid_mfa.crypto import derive_key, legacy_derive_key
from hyperid_mfa.models import HyperIDToken
from hyperid_mfa.tokens.store import StoredTokenProvider, decrypt, store_tokens

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def keys(*keys: str):
    return override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": list(keys)})


def rotate_keys(*args: str) -> str:
    out = io.StringIO()
    call_command("hyperid_mfa_rotate_keys", *args, stdout=out)
    return out.getvalue()


def ciphertexts() -> list[tuple[str, str]]:
    return list(
        HyperIDToken.objects.order_by("pk").values_list(
            "access_token_encrypted", "refresh_token_encrypted"
        )
    )


@pytest.fixture
def users(django_user_model):
    return [django_user_model.objects.create_user(f"user{n}") for n in range(3)]


def test_after_rotation_the_old_key_can_be_removed(users):
    with keys(OLD_KEY):
        for n, user in enumerate(users):
            store_tokens(user, f"access.token.{n}", f"refresh-{n}" if n else None)
    with keys(NEW_KEY, OLD_KEY):
        assert rotate_keys() == "Re-encrypted 3 stored HyperID token row(s) under the newest key.\n"
    with keys(NEW_KEY):
        for n, user in enumerate(users):
            assert StoredTokenProvider().get_access_token(user) == f"access.token.{n}"
        assert decrypt(HyperIDToken.objects.get(user=users[1]).refresh_token_encrypted) == (
            "refresh-1"
        )


def test_a_second_run_has_nothing_to_do(users):
    with keys(OLD_KEY):
        store_tokens(users[0], "a.b.c")
    with keys(NEW_KEY, OLD_KEY):
        rotate_keys()
        before = ciphertexts()
        assert rotate_keys().startswith("Re-encrypted 0 ")
        assert ciphertexts() == before


def test_dry_run_counts_and_changes_nothing(users):
    with keys(OLD_KEY):
        store_tokens(users[0], "a.b.c")
        store_tokens(users[1], "d.e.f")
    with keys(NEW_KEY, OLD_KEY):
        store_tokens(users[2], "already.under.new")
        before = ciphertexts()
        assert rotate_keys("--dry-run") == (
            "Would re-encrypt 2 stored HyperID token row(s) under the newest key.\n"
        )
        assert ciphertexts() == before


def test_small_batches_rewrite_every_row(users):
    with keys(OLD_KEY):
        for user in users:
            store_tokens(user, "a.b.c", "r")
    with keys(NEW_KEY, OLD_KEY):
        assert rotate_keys("--batch-size", "1").startswith("Re-encrypted 3 ")
    with keys(NEW_KEY):
        assert all(decrypt(access) and decrypt(refresh) for access, refresh in ciphertexts())


@pytest.mark.parametrize(
    ("size", "reason"),
    [("0", "0 is not 1 or more"), ("-3", "-3 is not 1 or more"), ("many", "'many' is not")],
)
def test_a_batch_size_below_one_is_refused(size, reason):
    with pytest.raises(CommandError, match=f"^Error: argument --batch-size: {reason}"):
        rotate_keys("--batch-size", size)
    # call_command's keyword options meet the same check.
    with pytest.raises(CommandError, match=f"^Error: argument --batch-size: {reason}"):
        call_command("hyperid_mfa_rotate_keys", batch_size=size)


def test_a_row_no_key_decrypts_fails_the_command_and_changes_nothing(users):
    with keys(Fernet.generate_key().decode()):
        store_tokens(users[0], "lost.access.token")
    with keys(OLD_KEY):
        store_tokens(users[1], "kept.access.token")
        store_tokens(users[2], "kept.too")
    before = ciphertexts()
    with keys(NEW_KEY, OLD_KEY), pytest.raises(CommandError) as info:
        rotate_keys()
    message = str(info.value)
    assert message.startswith("1 stored HyperID token row(s) cannot be decrypted")
    assert "no other row(s) were re-encrypted" in message
    assert "TOKEN_ENCRYPTION_KEYS" in message  # what to do: put the key back...
    assert "forget_tokens" in message  # ...or let those users sign in again
    assert ciphertexts() == before


def test_dry_run_reports_undecryptable_rows_too(users):
    with keys(Fernet.generate_key().decode()):
        store_tokens(users[0], "lost.access.token")
    with keys(NEW_KEY), pytest.raises(CommandError, match="1 stored"):
        rotate_keys("--dry-run")


def test_tokens_of_the_sha256_era_move_under_the_hkdf_key(users, settings):
    settings.HYPERID_MFA = {}
    settings.SECRET_KEY = "kept-secret"
    legacy = Fernet(legacy_derive_key("kept-secret"))
    HyperIDToken.objects.create(
        user=users[0], access_token_encrypted=legacy.encrypt(b"from.before.hkdf").decode()
    )
    assert rotate_keys().startswith("Re-encrypted 1 ")
    [(access, _)] = ciphertexts()
    assert Fernet(derive_key("kept-secret")).decrypt(access.encode()) == b"from.before.hkdf"


def test_quiet_at_verbosity_zero(users):
    with keys(OLD_KEY):
        store_tokens(users[0], "a.b.c")
    with keys(NEW_KEY, OLD_KEY):
        assert rotate_keys("--verbosity", "0") == ""
    with keys(NEW_KEY):
        assert decrypt(ciphertexts()[0][0]) == "a.b.c"


def test_moving_from_derived_to_configured_keys_keeps_the_tokens(users, settings):
    # What the W007 hint says to do.
    settings.SECRET_KEY = "the-secret"
    settings.HYPERID_MFA = {}
    store_tokens(users[0], "stored.under.derived.key")
    new_key = Fernet.generate_key().decode()
    derived = derive_key("the-secret").decode()
    with keys(new_key, derived):
        assert rotate_keys().startswith("Re-encrypted 1 ")
    with keys(new_key):
        assert StoredTokenProvider().get_access_token(users[0]) == "stored.under.derived.key"
