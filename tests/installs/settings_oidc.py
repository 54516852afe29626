"""``pip install "django-hyperid-mfa[oidc]"``: the README's mozilla-django-oidc block."""

from settings_common import *  # noqa: F403
from settings_common import HYPERID_MFA, INSTALLED_APPS

ISSUER = "https://login.hypersecureid.com/auth/realms/HyperID"
INSTALLED_APPS = [*INSTALLED_APPS, "mozilla_django_oidc"]
AUTHENTICATION_BACKENDS = ["hyperid_mfa.contrib.mozilla_oidc.HyperIDOIDCBackend"]
OIDC_RP_CLIENT_ID = "bank"
OIDC_RP_CLIENT_SECRET = "bank-secret"
OIDC_RP_SCOPES = "openid email mfa-client"
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_OP_AUTHORIZATION_ENDPOINT = ISSUER + "/protocol/openid-connect/auth"
OIDC_OP_TOKEN_ENDPOINT = ISSUER + "/protocol/openid-connect/token"
OIDC_OP_USER_ENDPOINT = ISSUER + "/protocol/openid-connect/userinfo"
OIDC_OP_JWKS_ENDPOINT = ISSUER + "/protocol/openid-connect/certs"
HYPERID_MFA = {**HYPERID_MFA, "REAUTHENTICATE_URL": "oidc_authentication_init"}
LOGIN_REDIRECT_URL = "/"
