"""Settings of the example project: a local demo on SQLite, never a deployment.

Run it with ``./scripts/demo`` from the repository root: it starts the HyperID
simulator (``manage.py hyperid_mfa_simulator``) next to the dev server, because the
demo talks to that simulator instead of HyperID.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A fixed key is fine for a demo that only listens on loopback; set
# EXAMPLE_SECRET_KEY to anything else to use your own.
SECRET_KEY = os.environ.get("EXAMPLE_SECRET_KEY", "example-project-insecure-development-key")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # The OpenAPI schema, and Swagger UI's files served from here: the demo works
    # offline, where the CDN that drf-spectacular uses by default is out of reach.
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Sign in with HyperID: allauth's OpenID Connect provider, and the app that keeps
    # the tokens of each HyperID sign-in for the gate.
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "hyperid_mfa",
    "hyperid_mfa.contrib.allauth",
    "bank",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Answers require_approval() in the bank's views with the approval page.
    "hyperid_mfa.middleware.MFAApprovalMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # Passwords: the admin, and the API's Basic authentication in the README.
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

ROOT_URLCONF = "example_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "bank.context_processors.hyperid_simulator",
            ],
        },
    },
]

WSGI_APPLICATION = "example_project.wsgi.application"
ASGI_APPLICATION = "example_project.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- HyperID ---------------------------------------------------------------------------

# Where the simulator listens (./scripts/demo sets it when it picks another port).
# Plain http:// is accepted for loopback addresses only (system check hyperid_mfa.E004).
HYPERID_SIMULATOR_URL = os.environ.get("EXAMPLE_HYPERID_URL", "http://127.0.0.1:8765").rstrip("/")

# HyperID's OpenID Connect login, in allauth's generic provider. A real project:
# HyperID's issuer as server_url, and the client HyperID registered for the site (its
# redirect URI: https://<site>/accounts/oidc/hyperid/login/callback/).
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "APPS": [
            {
                "provider_id": "hyperid",
                "name": "HyperID",
                "client_id": "example-bank",
                "secret": "example-bank-secret",
                "settings": {
                    "server_url": HYPERID_SIMULATOR_URL + "/auth/realms/HyperID",
                    # mfa-client: the access token may send MFA pushes.
                    "scope": ["openid", "email", "mfa-client"],
                },
            }
        ]
    }
}
# A new HyperID account becomes a user at once, named after its HyperID username.
# allauth finds returning users by their HyperID account: its email authentication
# (SOCIALACCOUNT_EMAIL_AUTHENTICATION) stays off, as addresses here are not verified.
SOCIALACCOUNT_AUTO_SIGNUP = True
ACCOUNT_EMAIL_VERIFICATION = "none"
# No error report of a sign-in shows its tokens (check hyperid_mfa.W029).
DEFAULT_EXCEPTION_REPORTER_FILTER = "hyperid_mfa.sensitive.SignInExceptionReporterFilter"

HYPERID_MFA = {
    # A real project: "https://api.hypersecureid.com" and HyperID's issuer (the defaults).
    "API_BASE_URL": HYPERID_SIMULATOR_URL,
    "ISSUER": HYPERID_SIMULATOR_URL + "/auth/realms/HyperID",
    # The simulator accepts whatever client the project names; a real project uses
    # the client HyperID registered for it, its secret read from the environment.
    "CLIENT_ID": "example-bank",
    "CLIENT_SECRET": "example-bank-secret",
    # A real project keeps its keys out of the code (Fernet.generate_key()).
    "TOKEN_ENCRYPTION_KEYS": ["Tx0-27HTY_E2s7vYXGwEkq8e8HNGpC-CJ05aXKA9wns="],
    # The approval page inside the bank's own layout.
    "BASE_TEMPLATE": "bank/base.html",
    # Room to play with the demo; the default, 5 pushes per 10 minutes, is the
    # anti-fatigue limit meant for production.
    "START_RATE_LIMIT": "20/10m",
}

REST_FRAMEWORK = {
    # Basic authentication lets the README's curl examples act as the demo user.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Example bank",
    "DESCRIPTION": "The example project of django-hyperid-mfa: transfers gated on a "
    "HyperID push approval, and the app's own API under /mfa/.",
    "VERSION": "1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# The app's audit lines (push sent, approved, consumed...) on the dev server's console.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"brief": {"format": "[%(asctime)s] %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "brief"}},
    "loggers": {"hyperid_mfa": {"handlers": ["console"], "level": "INFO"}},
}
