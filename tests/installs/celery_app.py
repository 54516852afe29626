"""The project's Celery app, set up as docs/operations.md says."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings_celery")
app = Celery("wallet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # finds hyperid_mfa.tasks among INSTALLED_APPS
