from django.apps import AppConfig


class HyperIDAllauthConfig(AppConfig):
    name = "hyperid_mfa.contrib.allauth"
    label = "hyperid_mfa_allauth"
    verbose_name = "HyperID MFA: django-allauth sign-in"

    def ready(self) -> None:
        from django.core.checks import Tags, register

        from ...exceptions import MissingExtra
        from . import checks, receivers

        try:
            receivers.connect()
        except ImportError as err:
            raise MissingExtra("allauth", self.name, err.name) from err
        register(checks.check_hyperid_app, Tags.security)
        register(checks.check_email_authentication, Tags.security)
        register(checks.check_server_url, Tags.security, deploy=True)
        register(checks.check_reporter_filter, Tags.security, deploy=True)
