"""``pip install "django-hyperid-mfa[metrics]"``: Prometheus metrics, mounted where the
project wants them and read by a scraper with the token (docs/operations.md, "Metrics")."""

from settings_common import *  # noqa: F403
from settings_common import HYPERID_MFA

HYPERID_MFA = {**HYPERID_MFA, "METRICS_TOKEN": "install-tests-metrics-token-0123456789abcdef"}
