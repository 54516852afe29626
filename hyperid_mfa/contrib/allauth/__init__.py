"""django-allauth: keep the tokens of every HyperID sign-in for the gate.

Add ``"hyperid_mfa.contrib.allauth"`` to ``INSTALLED_APPS`` after allauth's apps,
and configure allauth's generic OpenID Connect provider with the id ``hyperid``::

    SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": "hyperid",
                    "name": "HyperID",
                    "client_id": "...",
                    "secret": "...",
                    "settings": {
                        "server_url": "https://login.hypersecureid.com/auth/realms/HyperID",
                        "scope": ["openid", "email", "mfa-client"],
                    },
                }
            ]
        }
    }

Every HyperID sign-in (a new account, an account connected to a signed-in user, a
returning user) then stores its access and refresh tokens, encrypted, with
:func:`hyperid_mfa.tokens.store_sign_in_tokens`. allauth's own
``SOCIALACCOUNT_STORE_TOKENS``, which keeps tokens in clear in its tables, is not
needed. The system check ``hyperid_mfa.W013`` warns when the app's scope lacks
``mfa-client``.
"""
