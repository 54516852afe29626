"""The HYPERID_MFA setting: defaults, overrides at use time, unknown keys."""

from __future__ import annotations

import pytest
from django.test import override_settings

from hyperid_mfa.conf import (
    DEFAULTS,
    Rate,
    encryption_keys,
    mfa_settings,
    parse_rate,
    timeout,
    token_endpoint,
)
from hyperid_mfa.exceptions import HyperIDConfigurationError
from hyperid_mfa.tokens import StoredTokenProvider


def test_defaults_apply_where_the_project_sets_nothing():
    with override_settings(HYPERID_MFA={}):
        assert mfa_settings.API_BASE_URL == "https://api.hypersecureid.com"
        assert mfa_settings.MAX_RETRIES == 2
        assert mfa_settings.REQUEST_TTL == 300
        assert mfa_settings.START_RATE_LIMIT == "5/10m"
        assert timeout() == (3.05, 10.0)


def test_missing_setting_means_all_defaults():
    with override_settings():
        from django.conf import settings

        del settings.HYPERID_MFA
        assert DEFAULTS["TEMPLATE_ID"] == mfa_settings.TEMPLATE_ID


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
