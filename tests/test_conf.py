"""The HYPERID_MFA setting: defaults, overrides, validation once per change, unknown keys."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from django.test import override_settings

from hyperid_mfa import crypto
from hyperid_mfa.checks import settings as checks
from hyperid_mfa.checks import system
from hyperid_mfa.conf import (
    DEFAULTS,
    MFASettings,
    Rate,
    Settings,
    encryption_keys,
    key_ring,
    keys_are_derived,
    mfa_settings,
    parse_rate,
    start_rate,
    timeout,
    token_endpoint,
)
from hyperid_mfa.exceptions import HyperIDConfigurationError
from hyperid_mfa.tokens.store import StoredTokenProvider


def test_defaults_apply_where_the_project_sets_nothing():
    with override_settings(HYPERID_MFA={}):
        assert mfa_settings.API_BASE_URL == "https://api.hypersecureid.com"
        assert mfa_settings.MAX_RETRIES == 2
        assert mfa_settings.REQUEST_TTL == 300
        assert mfa_settings.START_RATE_LIMIT == "5/10m"
        assert timeout() == (3.05, 10.0)


def test_missing_setting_means_all_defaults(settings):
    settings.HYPERID_MFA = {"TEMPLATE_ID": 7}  # undone after the test, with setting_changed
    assert mfa_settings.TEMPLATE_ID == 7
    del settings.HYPERID_MFA
    # Deleting a setting sends no setting_changed, in pytest-django as in Django.
    mfa_settings.reload()
    assert DEFAULTS["TEMPLATE_ID"] == mfa_settings.TEMPLATE_ID
    assert mfa_settings.TOKEN_ENCRYPTION_KEYS is None


def test_override_settings_takes_effect_immediately():
    with override_settings(HYPERID_MFA={"REQUEST_TTL": 42}):
        assert mfa_settings.REQUEST_TTL == 42
    assert mfa_settings.REQUEST_TTL == 300


def test_unknown_keys_are_refused_with_their_name():
    with (
        override_settings(HYPERID_MFA={"REQUEST_TTL": 1, "REQEST_TTL": 2}),
        pytest.raises(HyperIDConfigurationError, match="'REQEST_TTL'"),
    ):
        _ = mfa_settings.REQUEST_TTL


def test_setting_must_be_a_dict():
    with (
        override_settings(HYPERID_MFA=["API_BASE_URL"]),
        pytest.raises(HyperIDConfigurationError, match="must be a dict"),
    ):
        _ = mfa_settings.API_BASE_URL


def test_asking_for_a_setting_that_does_not_exist_is_an_attribute_error():
    with pytest.raises(AttributeError):
        _ = mfa_settings.NOPE


def test_token_provider_import_string_is_resolved_and_reloaded():
    assert mfa_settings.TOKEN_PROVIDER is StoredTokenProvider
    with override_settings(HYPERID_MFA={"TOKEN_PROVIDER": "tests.test_conf.OtherProvider"}):
        assert mfa_settings.TOKEN_PROVIDER is OtherProvider
    assert mfa_settings.TOKEN_PROVIDER is StoredTokenProvider


def test_unimportable_provider_says_which_setting():
    with (
        override_settings(HYPERID_MFA={"TOKEN_PROVIDER": "nowhere.Provider"}),
        pytest.raises(HyperIDConfigurationError, match="TOKEN_PROVIDER"),
    ):
        _ = mfa_settings.TOKEN_PROVIDER


class OtherProvider:
    def get_access_token(self, user):
        return "x"

    def refresh_access_token(self, user):
        return "x"


def test_defaults_are_not_written_into_django_settings():
    from django.conf import settings

    with override_settings(HYPERID_MFA={}):
        _ = mfa_settings.REQUEST_TTL
        assert settings.HYPERID_MFA == {}


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("5/10m", Rate(5, 600)),
        ("3/h", Rate(3, 3600)),
        ("10/30s", Rate(10, 30)),
        (" 1 / 1d ", Rate(1, 86400)),
        (None, None),
    ],
)
def test_rates_are_read(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["5", "5/10", "five/m", "0/m", "5/0m", "-1/m", 5])
def test_unreadable_rates_are_refused(text):
    with pytest.raises(HyperIDConfigurationError):
        parse_rate(text)


def test_timeout_accepts_one_number():
    with override_settings(HYPERID_MFA={"TIMEOUT": 4}):
        assert timeout() == (4.0, 4.0)


def test_encryption_keys_default_to_keys_derived_from_secret_key_and_fallbacks():
    with override_settings(HYPERID_MFA={}, SECRET_KEY="new", SECRET_KEY_FALLBACKS=["old"]):
        keys = encryption_keys()
        assert len(keys) == 2
        assert keys[0] != keys[1]
        with override_settings(SECRET_KEY="new", SECRET_KEY_FALLBACKS=[]):
            assert encryption_keys() == keys[:1]


def test_token_endpoint_hangs_below_the_issuer():
    with override_settings(HYPERID_MFA={"ISSUER": "https://login.example/auth/realms/HyperID/"}):
        assert (
            token_endpoint()
            == "https://login.example/auth/realms/HyperID/protocol/openid-connect/token"
        )


# --- built once per change ------------------------------------------------------------------


@pytest.fixture
def validations(monkeypatch):
    """How many times the setting has been validated (checks.value_errors called)."""
    calls = []
    real = checks.value_errors

    def counting(raw):
        calls.append(raw)
        return real(raw)

    monkeypatch.setattr(checks, "value_errors", counting)
    return calls


def test_the_setting_is_validated_once_per_change_not_per_read(settings, validations):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "APPROVAL_MAX_AGE": 60}
    for _ in range(1000):
        assert mfa_settings.APPROVAL_MAX_AGE == 60
        assert mfa_settings.REQUEST_TTL == 300
        assert timeout() == (3.05, 10.0)
        assert start_rate() == Rate(5, 600)
    assert len(validations) == 1
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "APPROVAL_MAX_AGE": 61}
    assert mfa_settings.APPROVAL_MAX_AGE == 61
    assert len(validations) == 2


def test_other_settings_changing_keeps_the_cache(settings, validations):
    _ = mfa_settings.REQUEST_TTL
    settings.LANGUAGE_CODE = "fr"
    _ = mfa_settings.REQUEST_TTL
    assert len(validations) == 1


def test_secret_key_changes_drop_the_cache_too(settings, validations):
    settings.HYPERID_MFA = {}
    settings.SECRET_KEY = "first"
    keys = encryption_keys()
    settings.SECRET_KEY = "second"
    assert encryption_keys() != keys
    settings.SECRET_KEY_FALLBACKS = ["first"]
    assert encryption_keys()[1:] == keys


def test_a_change_while_the_settings_are_built_is_not_hidden(settings, monkeypatch):
    # Another thread's override lands between reading HYPERID_MFA and caching it.
    real = checks.value_errors
    once = threading.Event()

    def racing(raw):
        if not once.is_set():
            once.set()
            mfa_settings.reload()
        return real(raw)

    monkeypatch.setattr(checks, "value_errors", racing)
    settings.HYPERID_MFA = {"REQUEST_TTL": 42}
    assert mfa_settings.REQUEST_TTL == 42
    monkeypatch.setattr(checks, "value_errors", real)
    with override_settings(HYPERID_MFA={"REQUEST_TTL": 43}):
        assert mfa_settings.REQUEST_TTL == 43


def test_the_settings_are_typed_and_immutable(settings):
    settings.HYPERID_MFA = {"TIMEOUT": [2, 5], "TOKEN_ENCRYPTION_KEYS": [crypto_key()]}
    current = mfa_settings.current()
    assert isinstance(current, Settings)
    assert current.TIMEOUT == (2, 5)
    assert isinstance(current.TOKEN_ENCRYPTION_KEYS, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        current.REQUEST_TTL = 1  # type: ignore[misc]
    assert current is mfa_settings.current()


def test_settings_name_every_key_of_the_table():
    assert {field.name for field in dataclasses.fields(Settings)} == set(DEFAULTS)


def test_every_setting_reads_with_a_type_a_type_checker_sees():
    """``mfa_settings.REQUEST_TTL`` is a float to mypy, not Any: each key has its
    annotation, the field's own but where an import string reads as what it names."""
    read_as = MFASettings.__annotations__
    assert set(read_as) == set(DEFAULTS)
    resolved = {"TOKEN_PROVIDER", "ADAPTER"}
    for name, annotation in Settings.__annotations__.items():
        if name in resolved:
            assert "str" not in read_as[name].split(" | ")
        else:
            assert read_as[name] == annotation, name


def test_secrets_stay_out_of_the_settings_repr(settings):
    key = crypto_key()
    settings.HYPERID_MFA = {"CLIENT_SECRET": "s3cr3t-value", "TOKEN_ENCRYPTION_KEYS": [key]}
    text = repr(mfa_settings.current())
    assert "s3cr3t-value" not in text
    assert key not in text


def crypto_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# --- refused at run time, by the rules of checks.py ----------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "check_id"),
    [
        ("REQUEST_TTL", "soon", checks.E002),
        ("TIMEOUT", (0, 5), checks.E002),
        ("MAX_RETRIES", True, checks.E002),
        ("API_BASE_URL", "api.hypersecureid.com", checks.E003),
        ("TOKEN_ENCRYPTION_KEYS", ["not-a-key"], checks.E006),
        ("START_RATE_LIMIT", "5 per minute", checks.E008),
        ("API_BASE_URL", "https://api.hypersecureid.com?key=1", checks.E020),
    ],
)
def test_a_wrong_value_is_refused_at_the_first_read_with_the_checks_message(
    settings, key, value, check_id
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, key: value}
    [message] = system.check_settings()
    assert message.id == check_id
    with pytest.raises(HyperIDConfigurationError, match=key) as info:
        _ = mfa_settings.APPROVAL_MAX_AGE  # any read, not only the wrong key's
    assert message.msg in str(info.value)
    assert message.hint in str(info.value)


def test_every_problem_is_named_at_once(settings):
    settings.HYPERID_MFA = {"REQUEST_TTL": 0, "POLL_INTERVAL": "2"}
    with pytest.raises(HyperIDConfigurationError) as info:
        _ = mfa_settings.REQUEST_TTL
    assert "'REQUEST_TTL'" in str(info.value)
    assert "'POLL_INTERVAL'" in str(info.value)


def test_a_fixed_setting_is_read_again(settings):
    settings.HYPERID_MFA = {"REQUEST_TTL": "soon"}
    with pytest.raises(HyperIDConfigurationError):
        _ = mfa_settings.REQUEST_TTL
    settings.HYPERID_MFA = {"REQUEST_TTL": 30}
    assert mfa_settings.REQUEST_TTL == 30


def test_what_depends_on_the_deployment_is_only_a_system_check(settings):
    # Plain http:// to another host, no credentials: manage.py check says so, the
    # app still runs (docs/design.md: nothing refuses plain http:// at run time).
    settings.HYPERID_MFA = {"API_BASE_URL": "http://hyperid.internal"}
    assert mfa_settings.API_BASE_URL == "http://hyperid.internal"
    assert {m.id for m in system.check_settings()} == {checks.E004, checks.W007, checks.W010}


def test_an_incomplete_token_provider_is_refused_when_read(settings):
    settings.HYPERID_MFA = {"TOKEN_PROVIDER": "hyperid_mfa.models.MFARequest"}
    assert mfa_settings.REQUEST_TTL == 300  # resolved lazily: other keys still read
    with pytest.raises(HyperIDConfigurationError, match="lacks get_access_token"):
        _ = mfa_settings.TOKEN_PROVIDER


# --- derived values -----------------------------------------------------------------------


def test_parse_rate_here_is_wires_raising_a_configuration_error():
    with pytest.raises(HyperIDConfigurationError, match=r"^Cannot read the rate '5/10W'"):
        parse_rate("5/10W")


def test_configured_keys_are_used_as_given(settings):
    first, second = crypto_key(), crypto_key()
    settings.HYPERID_MFA = {"TOKEN_ENCRYPTION_KEYS": [first, second]}
    assert encryption_keys() == (first.encode(), second.encode())
    assert key_ring().decrypt_only == ()
    assert not keys_are_derived()
    settings.HYPERID_MFA = {"TOKEN_ENCRYPTION_KEYS": first}
    assert encryption_keys() == (first.encode(),)


def test_derived_keys_come_with_the_legacy_ones_to_decrypt_only(settings):
    settings.HYPERID_MFA = {}
    settings.SECRET_KEY = "new"
    settings.SECRET_KEY_FALLBACKS = ["old"]
    assert keys_are_derived()
    assert key_ring().keys == (crypto.derive_key("new"), crypto.derive_key("old"))
    assert key_ring().decrypt_only == (
        crypto.legacy_derive_key("new"),
        crypto.legacy_derive_key("old"),
    )
    assert key_ring() is key_ring()
