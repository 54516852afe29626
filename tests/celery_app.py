"""The Celery app of the integration tests: ``celery -A tests.celery_app worker``.

Redis is the broker and the result store (``HYPERID_MFA_TEST_CELERY_BROKER``,
default database 14 of 127.0.0.1:6379). Each test run has its own queue and key
prefix (``HYPERID_MFA_TEST_CELERY_RUN``, made up when unset and handed to the
workers it starts), so that runs sharing one Redis never take each other's tasks.
"""

import os
import uuid

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.celery_settings")

BROKER_URL = os.environ.get("HYPERID_MFA_TEST_CELERY_BROKER", "redis://127.0.0.1:6379/14")
RUN_ID = os.environ.get("HYPERID_MFA_TEST_CELERY_RUN") or uuid.uuid4().hex[:12]
QUEUE = f"hyperid-mfa-tests-{RUN_ID}"
KEY_PREFIX = f"hyperid-mfa-tests-{RUN_ID}:"
_PREFIXED = {"global_keyprefix": KEY_PREFIX}

app = Celery("hyperid_mfa_tests")
app.conf.update(
    broker_url=BROKER_URL,
    result_backend=BROKER_URL,
    broker_transport_options=_PREFIXED,
    result_backend_transport_options=_PREFIXED,
    broker_connection_retry_on_startup=True,
    task_default_queue=QUEUE,
    # Results name the worker that ran the task: the tests check both workers took part.
    result_extended=True,
    result_expires=3600,
    # One task at a time per worker thread, so that a second worker gets its share.
    worker_prefetch_multiplier=1,
    imports=("hyperid_mfa.tasks",),
)
