"""``pip install "django-hyperid-mfa[allauth]"``: the README's django-allauth block."""

from settings_common import *  # noqa: F403
from settings_common import INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [
    *INSTALLED_APPS,
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "hyperid_mfa.contrib.allauth",
]
MIDDLEWARE = [*MIDDLEWARE, "allauth.account.middleware.AccountMiddleware"]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "APPS": [
            {
                "provider_id": "hyperid",
                "name": "HyperID",
                "client_id": "bank",
                "secret": "bank-secret",
                "settings": {
                    "server_url": "https://login.hypersecureid.com/auth/realms/HyperID",
                    "scope": ["openid", "email", "mfa-client"],
                },
            }
        ]
    }
}
ACCOUNT_EMAIL_VERIFICATION = "none"
LOGIN_REDIRECT_URL = "/"
