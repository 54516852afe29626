"""``pip install "django-hyperid-mfa[celery]"``: a Celery app on Redis
(docs/operations.md), and the HyperID simulator a test serves
(``HYPERID_MFA_INSTALLS_SIMULATOR``: its HYPERID_MFA entries, as JSON)."""

import json
import os
import uuid

from settings_common import *  # noqa: F403
from settings_common import HYPERID_MFA

HYPERID_MFA = {**HYPERID_MFA, **json.loads(os.environ.get("HYPERID_MFA_INSTALLS_SIMULATOR", "{}"))}

CELERY_BROKER_URL = os.environ.get("HYPERID_MFA_TEST_CELERY_BROKER", "redis://127.0.0.1:6379/14")
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
# Each run its own queue and key prefix: runs sharing one Redis never take each
# other's tasks (a test passes HYPERID_MFA_INSTALLS_RUN on to the worker it starts).
INSTALLS_RUN = os.environ.get("HYPERID_MFA_INSTALLS_RUN") or uuid.uuid4().hex[:12]
CELERY_TASK_DEFAULT_QUEUE = f"hyperid-mfa-installs-{INSTALLS_RUN}"
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"hyperid-mfa-installs-{INSTALLS_RUN}:"}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = CELERY_BROKER_TRANSPORT_OPTIONS
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
