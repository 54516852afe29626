"""Settings of the processes that tests start: Celery workers and pollers.

``tests.settings`` pointed at the database of the test that started the process
(which already exists: the process never creates one), with the ``HYPERID_MFA``
entries the test passes, so that the process talks to the test's FakeHyperID.
Set by ``tests.celery_workers.child_environment()``:

- ``HYPERID_MFA_CHILD_DB_NAME``: the test database's name;
- ``HYPERID_MFA_CHILD_SETTINGS``: JSON merged into ``HYPERID_MFA``.
"""

import json
import os

from django.core.exceptions import ImproperlyConfigured

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, HYPERID_MFA

try:
    DATABASES["default"]["NAME"] = os.environ["HYPERID_MFA_CHILD_DB_NAME"]
except KeyError:
    raise ImproperlyConfigured(
        "tests.celery_settings is for processes started by the tests: "
        "HYPERID_MFA_CHILD_DB_NAME must name the test database"
    ) from None

HYPERID_MFA = {**HYPERID_MFA, **json.loads(os.environ.get("HYPERID_MFA_CHILD_SETTINGS", "{}"))}

# The app's log lines go to the process's output, which a failed test shows.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"hyperid_mfa": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
