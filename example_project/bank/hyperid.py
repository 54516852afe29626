"""Signing in with HyperID, simulated.

A real project signs its users in through HyperID's OpenID Connect login (with
django-allauth, mozilla-django-oidc or its own code) and, in the callback, hands the
tokens it received to ``hyperid_mfa.tokens.store_tokens``: the app sends the pushes
with the user's own access token. The demo has no HyperID, so it asks the simulator
for the tokens of an account named after the user instead; the ``store_tokens`` call
is the same.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings

from hyperid_mfa.tokens import store_tokens


class SimulatorUnavailable(Exception):
    """The HyperID simulator did not hand out tokens."""


def sign_in_with_hyperid(user: Any) -> str:
    """Store fresh HyperID tokens for ``user``; return their HyperID subject."""
    url = f"{settings.HYPERID_SIMULATOR_URL}/_fake/users"
    try:
        response = requests.post(url, json={"subject": user.get_username()}, timeout=5)
        response.raise_for_status()
        tokens = response.json()
        access_token, refresh_token = tokens["access_token"], tokens["refresh_token"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as err:
        raise SimulatorUnavailable(
            f"The HyperID simulator at {settings.HYPERID_SIMULATOR_URL} did not answer "
            f"({type(err).__name__}). Start it with ./scripts/demo, or with "
            "`python manage.py hyperid_mfa_simulator` next to the dev server."
        ) from err
    store_tokens(user, access_token, refresh_token, expires_in=tokens.get("expires_in"))
    return str(tokens.get("subject", user.get_username()))
