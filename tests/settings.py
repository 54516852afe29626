"""Settings for the test suite.

SQLite by default, the test database in a file of its own (see ``_sqlite``).
``HYPERID_MFA_TEST_DATABASE=postgresql://user@host:port/name`` runs the suite on
PostgreSQL instead (the concurrency tests need it). Redis, when
``HYPERID_MFA_TEST_REDIS`` names it (default redis://127.0.0.1:6379/15), is used
only by the tests marked ``redis``.
"""

import atexit
import contextlib
import glob
import importlib.util
import os
import secrets
import tempfile
from urllib.parse import unquote, urlsplit

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
# English unless a request asks for one of the app's other languages, by
# Accept-Language or the language cookie (LocaleMiddleware), as on a real site.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "German"), ("es", "Spanish")]


def _sqlite() -> dict:
    # A file, not ":memory:": Django's in-memory test database is one shared-cache
    # database in which a second connection fails at once with "database table is
    # locked", so threads with their own connections would not see the file locking
    # (waiting up to the busy timeout) that users' SQLite databases have. The name is
    # new in every process, so concurrent runs and xdist workers never share a file.
    path = os.path.join(
        tempfile.gettempdir(), f"hyperid-mfa-tests-{os.getpid()}-{secrets.token_hex(4)}.sqlite3"
    )

    def remove() -> None:
        # Django deletes the file after the run; this covers runs that stop early or
        # keep it (--reuse-db would never find it again under a new name), xdist's
        # suffixed names and SQLite's journal.
        for leftover in glob.glob(glob.escape(path) + "*"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)

    atexit.register(remove)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
        "TEST": {"NAME": path},
    }


def _database(url: str | None) -> dict:
    if not url:
        return _sqlite()
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"HYPERID_MFA_TEST_DATABASE: unsupported scheme {parts.scheme!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        # Separate names let several test runs share one server.
        "TEST": {"NAME": os.environ.get("HYPERID_MFA_TEST_DB_NAME", "test_hyperid_mfa")},
    }


DATABASES = {"default": _database(os.environ.get("HYPERID_MFA_TEST_DATABASE"))}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "hyperid_mfa",
    # A shop whose admin uses MFAProtectedAdminMixin (tests/test_admin_step_up.py).
    "tests.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "hyperid_mfa.middleware.MFAApprovalMiddleware",
]

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
            ]
        },
    }
]

# --- sign-in with HyperID, when the [allauth] / [oidc] extras are installed ----------------
# tests/test_sign_in.py points the HyperID app at a FakeHyperID served for the test.

HAVE_ALLAUTH = importlib.util.find_spec("allauth") is not None
HAVE_MOZILLA_OIDC = importlib.util.find_spec("mozilla_django_oidc") is not None

AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
if HAVE_ALLAUTH:
    INSTALLED_APPS += [
        "allauth",
        "allauth.account",
        "allauth.socialaccount",
        "allauth.socialaccount.providers.openid_connect",
        "hyperid_mfa.contrib.allauth",
    ]
    MIDDLEWARE.append("allauth.account.middleware.AccountMiddleware")
    AUTHENTICATION_BACKENDS.append("allauth.account.auth_backends.AuthenticationBackend")
    SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": "hyperid",
                    "name": "HyperID",
                    "client_id": "tests",
                    "secret": "tests-secret",
                    "settings": {
                        "server_url": "https://login.hypersecureid.test/auth/realms/HyperID",
                        "scope": ["openid", "email", "mfa-client"],
                    },
                }
            ]
        }
    }
    ACCOUNT_EMAIL_VERIFICATION = "none"
    SOCIALACCOUNT_LOGIN_ON_GET = True
    # As the README says: no error report of a sign-in shows its tokens (W029).
    DEFAULT_EXCEPTION_REPORTER_FILTER = "hyperid_mfa.sensitive.SignInExceptionReporterFilter"
if HAVE_MOZILLA_OIDC:
    INSTALLED_APPS.append("mozilla_django_oidc")
    # The backend itself goes into AUTHENTICATION_BACKENDS in its own tests, with the
    # provider's endpoints: it reads them when it is created.
    OIDC_RP_CLIENT_ID = "tests"
    OIDC_RP_CLIENT_SECRET = "tests-secret"
    OIDC_RP_SCOPES = "openid email mfa-client"
    OIDC_RP_SIGN_ALGO = "RS256"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STATIC_URL = "/static/"
LOGIN_URL = "/accounts/login/"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

HYPERID_MFA = {
    # The FakeHyperID fixtures override the URLs; these keep checks quiet.
    "API_BASE_URL": "https://api.hypersecureid.test",
    "ISSUER": "https://login.hypersecureid.test/auth/realms/HyperID",
    "CLIENT_ID": "tests",
    "CLIENT_SECRET": "tests-secret",
    "TOKEN_ENCRYPTION_KEYS": ["u7wGgNsWdkdEJA0nHGz4oYhZyqlVDOL6kD0XjrHnyKs="],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"hyperid_mfa": {"handlers": ["null"], "level": "DEBUG", "propagate": True}},
}

# Django 6.1 replaces EMAIL_BACKEND with MAILERS and warns, when mail is sent, that a
# project without MAILERS will have no mailer from Django 7.0. The test runner swaps
# in its in-memory backend either way; earlier Djangos ignore the setting.
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
