"""``pip install "django-hyperid-mfa[oidc]"``: a user signs in with HyperID through
mozilla-django-oidc and the app's ``HyperIDOIDCBackend`` (the README's settings) and
approves a transfer."""

from __future__ import annotations

import pytest

from steps import checks_report, sign_in_transfer_and_approve

ENDPOINTS = [
    "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "OIDC_OP_TOKEN_ENDPOINT",
    "OIDC_OP_USER_ENDPOINT",
    "OIDC_OP_JWKS_ENDPOINT",
]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_project_passes_djangos_checks():
    assert "System check identified no issues" in checks_report()


def test_a_user_signs_in_with_mozilla_django_oidc_and_an_approved_transfer_runs_once(
    chromium, live_server, simulator, settings
):
    for name in ENDPOINTS:
        setattr(settings, name, getattr(settings, name).replace(settings.ISSUER, simulator.issuer))

    sign_in_transfer_and_approve(chromium, live_server.url, simulator, "oidc")
