"""``pip install "django-hyperid-mfa[allauth]"``: a user signs in with HyperID through
django-allauth's OpenID Connect login (the README's settings) and approves a transfer.

Without what allauth verifies ID tokens with (PyJWT, cryptography: django-allauth's
own ``socialaccount`` extra), the sign-in's callback is a server error, and the
project's checks report it (E027)."""

from __future__ import annotations

import copy

import pytest

from steps import checks_report, sign_in_transfer_and_approve

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_project_passes_djangos_checks():
    assert "System check identified no issues" in checks_report()


def test_a_user_signs_in_with_allauth_and_an_approved_transfer_runs_once(
    chromium, live_server, simulator, settings
):
    providers = copy.deepcopy(settings.SOCIALACCOUNT_PROVIDERS)
    providers["openid_connect"]["APPS"][0]["settings"]["server_url"] = simulator.issuer
    settings.SOCIALACCOUNT_PROVIDERS = providers

    sign_in_transfer_and_approve(chromium, live_server.url, simulator, "allauth")
