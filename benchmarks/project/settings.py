"""Settings of the benchmark project; every value that must match the harness comes
from the environment.

``HYPERID_MFA_BENCH_DATABASE``     database URL: ``postgresql://user:password@host:port/name``
                                   or ``sqlite:///absolute/path``
``HYPERID_MFA_BENCH_SECRET_KEY``   SECRET_KEY: sessions and fingerprints signed by the
                                   harness must verify in the gunicorn workers
``HYPERID_MFA_BENCH_HYPERID_MFA``  the ``HYPERID_MFA`` dict, as JSON
``HYPERID_MFA_BENCH_POLL_THROTTLE`` ``off`` switches the request-detail throttle off
``HYPERID_MFA_BENCH_CACHE``        a ``redis://`` URL: Django's cache shared by every
                                   process (several servers); default: per process
``HYPERID_MFA_BENCH_ACTION_LOG``   the file the scale views append each action they run to
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/bench_hyperid_mfa"
#: Used when the harness runs on these settings itself (benchmarks/run.py).
DEFAULT_SECRET_KEY = "benchmarks-only-not-secret"  # noqa: S105
#: Fernet key for the stored HyperID tokens of the benchmark's users.
TOKEN_KEY = "jV1xqzW0f9o3dQ8yJm8b4cSx2o1r5f0wZ9kq7yE3hHQ="  # noqa: S105


def database_from_url(url: str) -> dict[str, Any]:
    """Django's DATABASES entry for a ``postgresql://`` or ``sqlite:///`` URL."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path)}
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"HYPERID_MFA_BENCH_DATABASE: unsupported scheme {parts.scheme!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        # A connection per worker for its lifetime, as a deployment would keep one
        # (or PgBouncer would): connecting per request would dwarf what is measured.
        "CONN_MAX_AGE": 600,
        # ...checked before each request reuses it, as a deployment whose database may
        # restart or drop connections needs: else the first query on a dropped one (the
        # session's, before any view) fails the request with a 500.
        "CONN_HEALTH_CHECKS": True,
    }


SECRET_KEY = os.environ.get("HYPERID_MFA_BENCH_SECRET_KEY", DEFAULT_SECRET_KEY)
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "benchmarks.project.urls"
WSGI_APPLICATION = "benchmarks.project.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

DATABASES = {
    "default": database_from_url(os.environ.get("HYPERID_MFA_BENCH_DATABASE", DEFAULT_DATABASE_URL))
}

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "hyperid_mfa",
    # The peer of case 2: django-otp's single-use static tokens on the same view.
    "django_otp",
    "django_otp.plugins.otp_static",
    # Case 6: the MFA requests' dashboard in the admin.
    "django.contrib.admin",
    "django.contrib.messages",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The admin's (case 6); it costs the other cases' views nothing they do not share.
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

STATIC_URL = "/static/"

# Per process, as Django's default: the throttle's counters stay in each worker. The
# several-server runs (benchmarks/cluster.py) share one Redis, as a deployment must for
# the push limit to hold across servers.
if os.environ.get("HYPERID_MFA_BENCH_CACHE"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["HYPERID_MFA_BENCH_CACHE"],
            "KEY_PREFIX": os.environ.get("HYPERID_MFA_BENCH_CACHE_PREFIX", "bench"),
            # A Redis that stops answering fails a request in a second, not a minute.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
ACTION_LOG = os.environ.get("HYPERID_MFA_BENCH_ACTION_LOG", "")

_throttle_rates: dict[str, str | None] = {}
if os.environ.get("HYPERID_MFA_BENCH_POLL_THROTTLE") == "off":
    _throttle_rates["hyperid_mfa_poll"] = None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_RATES": _throttle_rates,
}

HYPERID_MFA: dict[str, Any] = {
    "API_BASE_URL": "http://127.0.0.1:9",  # nothing there until the harness says where
    "ISSUER": "http://127.0.0.1:9/auth/realms/HyperID",
    "TOKEN_ENCRYPTION_KEYS": [TOKEN_KEY],
    "START_RATE_LIMIT": None,
    **json.loads(os.environ.get("HYPERID_MFA_BENCH_HYPERID_MFA", "{}")),
}

# The app's audit lines (INFO) are left to Django's defaults, which drop them: a
# deployment ships them somewhere, at a cost that depends on where.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "hyperid_mfa": {"handlers": ["stderr"], "level": "WARNING"},
        # A 500's traceback, in the server's log (benchmarks/cluster.py keeps it).
        "django.request": {"handlers": ["stderr"], "level": "ERROR"},
    },
}
