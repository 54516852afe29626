"""``pip install "django-hyperid-mfa[openapi]"``: the project's schema with
drf-spectacular, and the app's own (docs/api.md)."""

from settings_common import *  # noqa: F403
from settings_common import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "drf_spectacular"]
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {"TITLE": "Wallet", "VERSION": "1"}
