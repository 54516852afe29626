"""The sign-in set-ups a user gets wrong are system-check errors at start-up
(hyperid_mfa.contrib.checks: E025, E026, E027), not a dead end at the first click."""

from __future__ import annotations

import copy
import sys
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from hyperid_mfa.contrib.checks import check_sign_in
from tests.oidc_flow import NEEDS_ALLAUTH, NEEDS_MOZILLA

ISSUER = "https://login.hypersecureid.test/auth/realms/HyperID"
BACKEND = "hyperid_mfa.contrib.mozilla_oidc.HyperIDOIDCBackend"
#: The README's mozilla-django-oidc endpoints, at the test settings' issuer.
MOZILLA = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": ISSUER + "/protocol/openid-connect/auth",
    "OIDC_OP_TOKEN_ENDPOINT": ISSUER + "/protocol/openid-connect/token",
    "OIDC_OP_USER_ENDPOINT": ISSUER + "/protocol/openid-connect/userinfo",
    "OIDC_OP_JWKS_ENDPOINT": ISSUER + "/protocol/openid-connect/certs",
}


def ids() -> list[str]:
    return [message.id for message in check_sign_in()]


def messages() -> str:
    return "\n".join(f"{message.msg} {message.hint}" for message in check_sign_in())


def hyperid_app(settings: Any, **changes: Any) -> dict[str, Any]:
    """The test settings' allauth HyperID app, made the project's with ``changes``."""
    providers = copy.deepcopy(settings.SOCIALACCOUNT_PROVIDERS)
    [app] = providers["openid_connect"]["APPS"]
    app.update({key: value for key, value in changes.items() if key != "server_url"})
    if "server_url" in changes:
        app["settings"]["server_url"] = changes["server_url"]
    settings.SOCIALACCOUNT_PROVIDERS = providers
    return app


@pytest.fixture
def mozilla(settings: Any) -> Any:
    """The README's mozilla-django-oidc set-up, at the test settings' HyperID client."""
    settings.AUTHENTICATION_BACKENDS = [BACKEND]
    for name, value in MOZILLA.items():
        setattr(settings, name, value)
    return settings


def test_the_test_settings_sign_in_passes():
    assert ids() == []


# --- E025: allauth signs in with HyperID, and nothing stores the tokens ----------------------


@NEEDS_ALLAUTH
def test_an_allauth_hyperid_app_without_the_apps_allauth_integration_is_an_error(settings):
    settings.INSTALLED_APPS = [
        app for app in settings.INSTALLED_APPS if app != "hyperid_mfa.contrib.allauth"
    ]

    assert ids() == ["hyperid_mfa.E025"]
    assert "Add 'hyperid_mfa.contrib.allauth' to INSTALLED_APPS" in messages()
    with pytest.raises(SystemCheckError, match=r"hyperid_mfa\.E025"):
        call_command("check")  # what runserver and migrate run first


@NEEDS_ALLAUTH
def test_without_the_integration_a_token_provider_of_the_projects_own_is_trusted(settings):
    settings.INSTALLED_APPS = [
        app for app in settings.INSTALLED_APPS if app != "hyperid_mfa.contrib.allauth"
    ]
    settings.HYPERID_MFA = {
        **settings.HYPERID_MFA,
        "TOKEN_PROVIDER": "tests.test_conf.OtherProvider",
    }

    assert "hyperid_mfa.E025" not in ids()


@NEEDS_ALLAUTH
def test_another_allauth_openid_connect_app_needs_no_integration(settings):
    settings.INSTALLED_APPS = [
        app for app in settings.INSTALLED_APPS if app != "hyperid_mfa.contrib.allauth"
    ]
    hyperid_app(settings, provider_id="keycloak", client_id="someone-else")

    assert ids() == []


# --- E026: the sign-in's client or issuer is not HYPERID_MFA's ---------------------------------


@NEEDS_ALLAUTH
def test_an_allauth_app_of_another_client_is_an_error(settings):
    hyperid_app(settings, client_id="another-client")

    assert ids() == ["hyperid_mfa.E026"]
    assert "the client 'another-client' (HYPERID_MFA['CLIENT_ID'] is 'tests')" in messages()


@NEEDS_ALLAUTH
def test_an_allauth_app_at_another_issuer_is_an_error(settings):
    hyperid_app(settings, server_url="http://127.0.0.1:8765/auth/realms/HyperID")

    assert ids() == ["hyperid_mfa.E026"]
    assert "the issuer http://127.0.0.1:8765/auth/realms/HyperID" in messages()


@NEEDS_ALLAUTH
def test_an_allauth_app_of_another_realm_is_an_error(settings):
    hyperid_app(settings, server_url=ISSUER.replace("HyperID", "Sandbox"))

    assert ids() == ["hyperid_mfa.E026"]


@NEEDS_ALLAUTH
def test_without_a_client_id_of_its_own_the_app_is_not_compared_by_client(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "CLIENT_ID": None}
    hyperid_app(settings, client_id="another-client")

    assert "hyperid_mfa.E026" not in ids()  # W010 says that no refresh is possible


def ids_with_server_url(server_url: str) -> list[str]:
    """The check's ids with the allauth app at ``server_url`` (for hypothesis, which
    runs many examples in one test: no function-scoped ``settings`` fixture)."""
    providers = copy.deepcopy(django_settings.SOCIALACCOUNT_PROVIDERS)
    providers["openid_connect"]["APPS"][0]["settings"]["server_url"] = server_url
    with override_settings(SOCIALACCOUNT_PROVIDERS=providers):
        return ids()


#: The same URL, spelled as allauth and browsers accept it.
same_issuer = st.tuples(
    st.sampled_from(["https", "HTTPS", "Https"]),
    st.sampled_from(["login.hypersecureid.test", "LOGIN.HyperSecureID.test"]),
    st.sampled_from(["", ":443"]),
    st.sampled_from(["", "/", "/.well-known/openid-configuration"]),
).map(lambda parts: f"{parts[0]}://{parts[1]}{parts[2]}/auth/realms/HyperID{parts[3]}")


@NEEDS_ALLAUTH
@given(server_url=same_issuer)
def test_the_issuer_is_compared_as_a_url_not_as_a_string(server_url: str):
    assert ids_with_server_url(server_url) == []


@NEEDS_ALLAUTH
@given(
    server_url=st.sampled_from(
        [
            "https://login.hypersecureid.test:8443/auth/realms/HyperID",
            "http://login.hypersecureid.test/auth/realms/HyperID",
            "https://login.hypersecureid.test/auth/realms/HyperIDs",
            "https://login.hypersecureid.test/auth/realms",
            "https://login.hypersecureid.com/auth/realms/HyperID",
            "https://login.hypersecureid.test.evil/auth/realms/HyperID",
        ]
    )
)
def test_another_port_scheme_path_or_host_is_another_issuer(server_url: str):
    assert ids_with_server_url(server_url) == ["hyperid_mfa.E026"]


@NEEDS_MOZILLA
def test_the_readmes_mozilla_set_up_at_the_apps_client_passes(mozilla):
    assert ids() == []


@NEEDS_MOZILLA
def test_mozilla_with_another_client_is_an_error(mozilla):
    mozilla.OIDC_RP_CLIENT_ID = "another-client"

    assert ids() == ["hyperid_mfa.E026"]
    assert "the client 'another-client'" in messages()


@NEEDS_MOZILLA
def test_mozilla_with_another_token_endpoint_is_an_error(mozilla):
    mozilla.OIDC_OP_TOKEN_ENDPOINT = "https://other.example/protocol/openid-connect/token"

    assert ids() == ["hyperid_mfa.E026"]
    assert (
        "the token endpoint https://other.example/protocol/openid-connect/token "
        f"(the app refreshes at {ISSUER}/protocol/openid-connect/token)"
    ) in messages()


@NEEDS_MOZILLA
def test_mozilla_fetching_keys_from_elsewhere_is_an_error(mozilla):
    mozilla.OIDC_OP_JWKS_ENDPOINT = "https://keys.example/certs"

    assert ids() == ["hyperid_mfa.E026"]
    assert "OIDC_OP_JWKS_ENDPOINT is not under HYPERID_MFA['ISSUER']" in messages()


@NEEDS_MOZILLA
def test_a_subclass_of_the_backend_is_checked_too(mozilla):
    mozilla.AUTHENTICATION_BACKENDS = ["tests.test_sign_in_checks.ProjectBackend"]
    mozilla.OIDC_RP_CLIENT_ID = "another-client"

    assert ids() == ["hyperid_mfa.E026"]


@NEEDS_MOZILLA
def test_mozilla_settings_without_the_apps_backend_are_not_checked(mozilla):
    mozilla.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    mozilla.OIDC_RP_CLIENT_ID = "another-client"

    assert ids() == []


# --- E027: a sign-in library without what verifies ID tokens -------------------------------


@pytest.fixture
def without_pyjwt(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyJWT is not installed, and nothing that imported it is loaded either."""
    for name in list(sys.modules):
        if name == "jwt" or name.startswith(
            ("jwt.", "mozilla_django_oidc", "hyperid_mfa.contrib.mozilla_oidc")
        ):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "jwt", None)  # import jwt -> ModuleNotFoundError


@NEEDS_ALLAUTH
def test_allauth_without_pyjwt_is_an_error_before_the_first_sign_in(without_pyjwt):
    assert ids() == ["hyperid_mfa.E027"]
    assert "django-allauth's OpenID Connect sign-in verifies" in messages()
    assert 'pip install "django-hyperid-mfa[allauth]"' in messages()


@NEEDS_ALLAUTH
def test_allauth_with_a_pyjwt_without_cryptography_is_an_error(monkeypatch):
    import jwt.algorithms

    monkeypatch.setattr(jwt.algorithms, "has_crypto", False)

    assert ids() == ["hyperid_mfa.E027"]
    assert "PyJWT cannot use cryptography's RSA and EC algorithms" in messages()


@NEEDS_MOZILLA
def test_the_backend_without_what_mozilla_verifies_with_is_an_error(mozilla, without_pyjwt):
    mozilla.INSTALLED_APPS = [app for app in mozilla.INSTALLED_APPS if "allauth" not in app]

    assert ids() == ["hyperid_mfa.E027"]
    assert f"AUTHENTICATION_BACKENDS names '{BACKEND}', which cannot be imported" in messages()
    assert "needs the [oidc] extra (jwt is not installed)" in messages()
    assert 'pip install "django-hyperid-mfa[oidc]"' in messages()


def test_the_backend_without_mozilla_django_oidc_is_an_error(settings, monkeypatch):
    for name in list(sys.modules):
        if name.startswith(("mozilla_django_oidc", "hyperid_mfa.contrib.mozilla_oidc")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mozilla_django_oidc", None)
    settings.AUTHENTICATION_BACKENDS = [BACKEND]

    assert ids() == ["hyperid_mfa.E027"]
    assert "needs the [oidc] extra (mozilla_django_oidc" in messages()


def test_a_misspelt_backend_of_the_app_is_an_error(settings):
    settings.AUTHENTICATION_BACKENDS = ["hyperid_mfa.contrib.mozilla_oidc.HyperIDBackend"]

    assert ids() == ["hyperid_mfa.E027"]
    assert "Correct the path." in messages()


def test_another_librarys_backend_that_does_not_import_is_left_to_django(settings):
    settings.AUTHENTICATION_BACKENDS = ["nowhere.Backend"]

    assert ids() == []


if django_settings.HAVE_MOZILLA_OIDC:
    from hyperid_mfa.contrib.mozilla_oidc import HyperIDOIDCBackend

    class ProjectBackend(HyperIDOIDCBackend):
        """A project's own subclass of the app's backend."""
