from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HyperIDMFAConfig(AppConfig):
    name = "hyperid_mfa"
    verbose_name = _("HyperID MFA")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers
        from .checks import register_checks

        register_checks()
        receivers.connect()
