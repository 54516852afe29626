"""What every install path's project has: the README's Installation, a wallet app with
gated views and an admin, and SQLite in a file that a child process (a Celery worker)
opens too (a test gives it the file's name in ``HYPERID_MFA_INSTALLS_DB``)."""

import os
import tempfile

SECRET_KEY = "install-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
USE_TZ = True
ROOT_URLCONF = "wallet.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
LOGIN_URL = "/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "hyperid_mfa",
    "wallet",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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

_DATABASE = os.environ.get("HYPERID_MFA_INSTALLS_DB") or os.path.join(
    tempfile.gettempdir(), f"hyperid-mfa-installs-{os.getpid()}.sqlite3"
)
# The test database is this very file: a worker started by a test opens what the test
# wrote. (pytest-django creates it, and deletes it afterwards.)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _DATABASE,
        "TEST": {"NAME": _DATABASE},
    }
}

# The README's Installation; the tests point API_BASE_URL and ISSUER at a simulator.
HYPERID_MFA = {
    "CLIENT_ID": "bank",
    "CLIENT_SECRET": "bank-secret",
    "TOKEN_ENCRYPTION_KEYS": ["mKkbMEXK7Dr0uPiqjSbEgvtEv6Xb6qAzJwXIyJ-sVvw="],
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
