from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HyperIDMFAConfig(AppConfig):
    name = "hyperid_mfa"
    verbose_name = _("HyperID MFA")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.checks import Tags, register

        from . import receivers
        from .atomicity import check_atomic_requests
        from .checks import register_checks

        register_checks()
        register(check_atomic_requests, Tags.urls, Tags.security)
        receivers.connect()
