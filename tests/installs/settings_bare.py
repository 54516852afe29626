"""The bare install: ``pip install django-hyperid-mfa``, no extra."""

from settings_common import *  # noqa: F403
