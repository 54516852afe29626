"""Tokens: stored encrypted, rotated keys, refreshed at the OIDC endpoint when refused."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings
from django.utils import timezone
from django.views.debug import ExceptionReporter

from hyperid_mfa import services
from hyperid_mfa.crypto import derive_key, legacy_derive_key
from hyperid_mfa.exceptions import (
    HyperIDConfigurationError,
    ServiceUnavailable,
    TokenUnavailable,
    UndecryptableTokens,
)
from hyperid_mfa.models import HyperIDToken
from hyperid_mfa.tokens.store import (
    StoredTokenProvider,
    TokenProvider,
    decrypt,
    encrypt,
    forget_tokens,
    get_token_provider,
    jwt_expiry,
    rotate_encryption,
    store_tokens,
)
from tests.conftest import link

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def stored(user):
    return HyperIDToken.objects.get(user=user)


def test_tokens_are_stored_encrypted_and_read_back(user):
    store_tokens(user, "access.token.value", "refresh-value", expires_in=600)
    row = stored(user)
    assert "access.token.value" not in row.access_token_encrypted
    assert "refresh-value" not in row.refresh_token_encrypted
    assert StoredTokenProvider().get_access_token(user) == "access.token.value"
    assert timedelta(seconds=590) < row.access_expires_at - timezone.now() <= timedelta(600)


def test_storing_again_replaces_the_previous_tokens(user):
    store_tokens(user, "first.token.a", "r1")
    store_tokens(user, "second.token.b")
    row = stored(user)
    assert decrypt(row.access_token_encrypted) == "second.token.b"
    assert not row.has_refresh_token
    assert HyperIDToken.objects.count() == 1


def test_expiry_is_read_from_the_jwt_when_not_given(fake_hyperid, user):
    subject = fake_hyperid.add_user()
    pair = fake_hyperid.issue_tokens(subject, expires_in=120)
    store_tokens(user, pair.access_token)
    assert jwt_expiry(pair.access_token) == stored(user).access_expires_at
    assert stored(user).access_expires_at > timezone.now() + timedelta(seconds=100)


@pytest.mark.parametrize("token", ["opaque", "a.b", "a.%%%.c", "a.bnVsbA.c", "a.eyJleHAiOiJ4In0.c"])
def test_tokens_without_a_readable_expiry_have_none(token):
    assert jwt_expiry(token) is None


def test_no_stored_token_is_token_unavailable(user):
    with pytest.raises(TokenUnavailable):
        StoredTokenProvider().get_access_token(user)
    with pytest.raises(TokenUnavailable):
        StoredTokenProvider().refresh_access_token(user)


def test_forget_tokens_deletes_them(user):
    store_tokens(user, "a.b.c")
    forget_tokens(user)
    assert not HyperIDToken.objects.exists()


@pytest.mark.parametrize("value", ["", None])
def test_storing_no_access_token_is_refused(user, value):
    with pytest.raises(ValueError, match="access_token"):
        store_tokens(user, value)


# --- key rotation ------------------------------------------------------------------------------


def test_key_rotation_old_tokens_stay_readable_then_are_rewritten(user):
    with override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [OLD_KEY]}):
        store_tokens(user, "rotating.access.token", "rotating-refresh")
        before = stored(user).access_token_encrypted
    with override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [NEW_KEY, OLD_KEY]}):
        assert StoredTokenProvider().get_access_token(user) == "rotating.access.token"
        assert rotate_encryption() == 1
        assert stored(user).access_token_encrypted != before
    with override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [NEW_KEY]}):
        assert StoredTokenProvider().get_access_token(user) == "rotating.access.token"
        assert decrypt(stored(user).refresh_token_encrypted) == "rotating-refresh"


def test_token_unreadable_with_the_configured_keys_means_sign_in_again(user):
    with override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [OLD_KEY]}):
        store_tokens(user, "lost.access.token")
    with override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [NEW_KEY]}):
        with pytest.raises(TokenUnavailable, match="decrypted") as info:
            StoredTokenProvider().get_access_token(user)
        assert "lost" not in str(info.value)


def test_keys_derived_from_secret_key_survive_its_rotation_through_fallbacks(user):
    with override_settings(HYPERID_MFA={}, SECRET_KEY="first-secret"):
        store_tokens(user, "kept.access.token")
    with override_settings(
        HYPERID_MFA={}, SECRET_KEY="second-secret", SECRET_KEY_FALLBACKS=["first-secret"]
    ):
        assert StoredTokenProvider().get_access_token(user) == "kept.access.token"


def test_a_token_stored_under_the_sha256_derived_key_still_decrypts_then_rotates(user, settings):
    settings.HYPERID_MFA = {}
    settings.SECRET_KEY = "the-projects-secret"
    # What a version before HKDF stored: Fernet under sha256(prefix + SECRET_KEY).
    legacy = Fernet(legacy_derive_key("the-projects-secret"))
    HyperIDToken.objects.create(
        user=user,
        access_token_encrypted=legacy.encrypt(b"old.access.token").decode(),
        refresh_token_encrypted=legacy.encrypt(b"old-refresh").decode(),
    )
    assert StoredTokenProvider().get_access_token(user) == "old.access.token"

    assert rotate_encryption() == 1

    hkdf = Fernet(derive_key("the-projects-secret"))
    assert hkdf.decrypt(stored(user).access_token_encrypted.encode()) == b"old.access.token"
    assert hkdf.decrypt(stored(user).refresh_token_encrypted.encode()) == b"old-refresh"
    assert rotate_encryption() == 0


def test_new_tokens_are_encrypted_under_the_hkdf_key_only(user, settings):
    settings.HYPERID_MFA = {}
    settings.SECRET_KEY = "the-projects-secret"
    store_tokens(user, "new.access.token")
    ciphertext = stored(user).access_token_encrypted.encode()
    assert Fernet(derive_key("the-projects-secret")).decrypt(ciphertext) == b"new.access.token"


def test_rotation_rewrites_only_rows_not_under_the_newest_key(user, other_user):
    with override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [OLD_KEY]}):
        store_tokens(user, "old.access.token")
    with override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [NEW_KEY, OLD_KEY]}):
        store_tokens(other_user, "new.access.token", "new-refresh")
        untouched = stored(other_user).access_token_encrypted
        assert rotate_encryption(dry_run=True) == 1
        assert rotate_encryption(batch_size=1) == 1
        assert stored(other_user).access_token_encrypted == untouched
        assert rotate_encryption() == 0


def test_a_row_no_key_decrypts_stops_rotation_before_anything_changes(user, other_user):
    lost_key = Fernet.generate_key().decode()
    with override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [lost_key]}):
        store_tokens(user, "lost.access.token")
    with override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [OLD_KEY]}):
        store_tokens(other_user, "kept.access.token")
    before = list(HyperIDToken.objects.values_list("access_token_encrypted", flat=True))
    with (
        override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [NEW_KEY, OLD_KEY]}),
        pytest.raises(UndecryptableTokens, match="1 stored") as info,
    ):
        rotate_encryption()
    assert info.value.pks == [stored(user).pk]
    assert info.value.rewritten == 0
    assert list(HyperIDToken.objects.values_list("access_token_encrypted", flat=True)) == before


def test_a_row_rewritten_meanwhile_is_rotated_as_it_is_now(user, monkeypatch):
    from hyperid_mfa.tokens import store as tokens

    with override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [OLD_KEY]}):
        store_tokens(user, "scanned.access.token")
    real_scan = tokens._rows_to_rotate

    def scan_then_refresh(ring, batch_size):
        found = real_scan(ring, batch_size)
        # A refresh stores new tokens (under the newest key) between scan and rewrite.
        store_tokens(user, "refreshed.access.token", "refreshed-refresh")
        return found

    monkeypatch.setattr(tokens, "_rows_to_rotate", scan_then_refresh)
    with override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [NEW_KEY, OLD_KEY]}):
        assert rotate_encryption() == 0
        assert decrypt(stored(user).access_token_encrypted) == "refreshed.access.token"


def test_a_row_no_key_reads_any_more_is_left_and_reported(user, other_user, monkeypatch):
    from hyperid_mfa.tokens import store as tokens

    with override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [OLD_KEY]}):
        store_tokens(user, "first.access.token")
        store_tokens(other_user, "second.access.token")
    real_scan = tokens._rows_to_rotate
    unknown = Fernet(Fernet.generate_key())

    def scan_then_foreign_write(ring, batch_size):
        found = real_scan(ring, batch_size)
        # Another process, already on a key this one lacks, rewrote a row.
        HyperIDToken.objects.filter(user=user).update(
            access_token_encrypted=unknown.encrypt(b"x").decode()
        )
        return found

    monkeypatch.setattr(tokens, "_rows_to_rotate", scan_then_foreign_write)
    with (
        override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [NEW_KEY, OLD_KEY]}),
        pytest.raises(UndecryptableTokens, match="1 other row") as info,
    ):
        rotate_encryption()
    assert info.value.pks == [stored(user).pk]
    with override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": [NEW_KEY]}):
        assert decrypt(stored(other_user).access_token_encrypted) == "second.access.token"


def test_rotation_batches_must_hold_a_row():
    with pytest.raises(ValueError, match="batch_size"):
        rotate_encryption(batch_size=0)


def test_malformed_keys_are_a_configuration_error(user):
    with (
        override_settings(HYPERID_MFA={"TOKEN_ENCRYPTION_KEYS": ["short"]}),
        pytest.raises(HyperIDConfigurationError, match="Fernet"),
    ):
        store_tokens(user, "a.b.c")


# --- refresh ------------------------------------------------------------------------------------


def test_expired_token_is_refreshed_before_use(fake_hyperid, user):
    subject = fake_hyperid.add_user()
    pair = fake_hyperid.issue_tokens(subject, expires_in=10)  # inside the 30 s leeway
    store_tokens(user, pair.access_token, pair.refresh_token, expires_in=10)
    token = StoredTokenProvider().get_access_token(user)
    assert token != pair.access_token
    assert fake_hyperid.call_count("token") == 1
    assert fake_hyperid.subject_of(token) == subject


def test_refresh_keeps_the_rotated_refresh_token(fake_hyperid, user):
    subject = fake_hyperid.add_user()
    pair = fake_hyperid.issue_tokens(subject)
    store_tokens(user, pair.access_token, pair.refresh_token)
    StoredTokenProvider().refresh_access_token(user)
    row = stored(user)
    assert decrypt(row.refresh_token_encrypted) != pair.refresh_token
    # Much later, the new refresh token still works (the used one would not).
    HyperIDToken.objects.filter(pk=row.pk).update(refreshed_at=None)
    assert StoredTokenProvider().refresh_access_token(user)
    assert fake_hyperid.call_count("token") == 2


def test_a_refresh_just_done_by_another_caller_is_reused(fake_hyperid, user):
    subject = fake_hyperid.add_user()
    pair = fake_hyperid.issue_tokens(subject)
    store_tokens(user, pair.access_token, pair.refresh_token)
    first = StoredTokenProvider().refresh_access_token(user)
    second = StoredTokenProvider().refresh_access_token(user)
    assert first == second
    assert fake_hyperid.call_count("token") == 1


def test_refused_refresh_is_token_unavailable(fake_hyperid, user):
    subject = fake_hyperid.add_user()
    pair = fake_hyperid.issue_tokens(subject)
    store_tokens(user, pair.access_token, pair.refresh_token)
    fake_hyperid.revoke_tokens(subject)
    with pytest.raises(TokenUnavailable):
        StoredTokenProvider().refresh_access_token(user)


def test_no_refresh_token_means_no_refresh(user):
    store_tokens(user, "only.access.token")
    with pytest.raises(TokenUnavailable, match="cannot be refreshed"):
        StoredTokenProvider().refresh_access_token(user)


def test_expired_refresh_token_is_not_sent(fake_hyperid, user):
    store_tokens(user, "a.b.c", "refresh", refresh_expires_in=1)
    HyperIDToken.objects.update(refresh_expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(TokenUnavailable, match="expired"):
        StoredTokenProvider().refresh_access_token(user)
    assert fake_hyperid.call_count("token") == 0


# --- error reports -------------------------------------------------------------------------


def error_report(err: BaseException) -> list[tuple[str, str]]:
    """("file:function", local variables) of each frame as Django's error report shows
    them (DEBUG is False), but this module's frames."""
    frames = ExceptionReporter(None, type(err), err, err.__traceback__).get_traceback_frames()
    return [
        (f"{Path(frame['filename']).name}:{frame['function']}", repr(dict(frame["vars"])))
        for frame in frames
        if frame["filename"] != __file__
    ]


def test_tokens_being_stored_stay_out_of_error_reports(django_user_model):
    access_token, refresh_token = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    unsaved = django_user_model(username="unsaved")
    with pytest.raises(ValueError, match="saved") as info:
        store_tokens(unsaved, access_token, refresh_token)
    report = error_report(info.value)
    assert "unsaved" in dict(report)["store.py:store_tokens"]  # the frame, the user shown
    assert access_token not in str(report)
    assert refresh_token not in str(report)


def test_a_failed_refresh_keeps_tokens_and_secrets_out_of_error_reports(fake_hyperid, user):
    link(fake_hyperid, user, expires_in=10)
    refresh_token = decrypt(stored(user).refresh_token_encrypted)
    fake_hyperid.inject("http_500", call="token")
    with pytest.raises(ServiceUnavailable) as info:
        StoredTokenProvider().get_access_token(user)
    report = error_report(info.value)
    # The HTTP client's frame held both; refresh_access_token's marker hides it too.
    assert "calls.py:refresh_access_token" in dict(report)
    assert refresh_token not in str(report)
    assert fake_hyperid.client_secret not in str(report)


# --- custom providers ---------------------------------------------------------------------


class SessionlessProvider:
    """A provider as a project keeping tokens elsewhere would write it."""

    calls: list[str] = []

    def get_access_token(self, user):
        self.calls.append("get")
        return user.fake_token

    def refresh_access_token(self, user):
        self.calls.append("refresh")
        raise TokenUnavailable("cannot refresh here")


def test_a_custom_provider_is_used_for_every_call(fake_hyperid, user, settings):
    settings.HYPERID_MFA = {
        **settings.HYPERID_MFA,
        "TOKEN_PROVIDER": "tests.test_tokens.SessionlessProvider",
    }
    subject = fake_hyperid.add_user()
    user.fake_token = fake_hyperid.issue_tokens(subject).access_token
    SessionlessProvider.calls = []
    request = services.start_request(user, "payments.withdraw")
    assert request.is_pending
    assert SessionlessProvider.calls == ["get"]
    assert isinstance(get_token_provider(), TokenProvider)


def test_a_provider_without_the_methods_is_refused(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "TOKEN_PROVIDER": "builtins.object"}
    with pytest.raises(HyperIDConfigurationError, match="get_access_token"):
        get_token_provider()


#: A provider given as an object rather than a class is used as it is.
PROVIDER_OBJECT = SessionlessProvider()


def test_a_provider_object_is_used_as_it_is(settings):
    settings.HYPERID_MFA = {
        **settings.HYPERID_MFA,
        "TOKEN_PROVIDER": "tests.test_tokens.PROVIDER_OBJECT",
    }
    assert get_token_provider() is PROVIDER_OBJECT


def test_encrypt_writes_under_the_newest_key(settings):
    settings.HYPERID_MFA = {"TOKEN_ENCRYPTION_KEYS": [NEW_KEY, OLD_KEY]}
    assert Fernet(NEW_KEY).decrypt(encrypt("a.b.c").encode()) == b"a.b.c"


# --- tokens from a sign-in --------------------------------------------------------------


@pytest.mark.django_db
def test_a_sign_in_without_the_mfa_client_scope_stores_no_token(fake_hyperid, user):
    from hyperid_mfa.tokens.store import store_sign_in_tokens

    subject = fake_hyperid.add_user("nomfa")
    pair = fake_hyperid.issue_tokens(subject, scopes=("openid", "email"))
    assert not store_sign_in_tokens(user, pair.access_token, pair.refresh_token)
    assert not HyperIDToken.objects.filter(user=user).exists()
    # The token endpoint's own word wins over the token's claim.
    assert not store_sign_in_tokens(user, "opaque-token", scope="openid email")
    assert not HyperIDToken.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_a_sign_in_with_the_mfa_client_scope_is_stored_encrypted(fake_hyperid, user):
    from hyperid_mfa.tokens.store import store_sign_in_tokens

    pair = fake_hyperid.issue_tokens(fake_hyperid.add_user("withmfa"))
    assert store_sign_in_tokens(user, pair.access_token, pair.refresh_token)
    row = HyperIDToken.objects.get(user=user)
    assert pair.access_token not in row.access_token_encrypted
    assert decrypt(row.access_token_encrypted) == pair.access_token
