from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HyperIDMFAConfig(AppConfig):
    name = "hyperid_mfa"
    verbose_name = _("HyperID MFA")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.checks import Tags, register

        from . import metrics
        from .checks import deployment as deployment_checks
        from .checks.system import register_checks
        from .contrib import checks as sign_in_checks
        from .dashboard import tallies
        from .gate.atomicity import check_atomic_requests
        from .services import receivers

        # Every check and its ids: docs/checks.md.
        register_checks()
        register(check_atomic_requests, Tags.urls, Tags.security)
        register(deployment_checks.check_urls, Tags.urls)
        register(deployment_checks.check_permission_windows, Tags.urls)
        register(deployment_checks.check_templates, Tags.templates)
        register(deployment_checks.check_rate_limit_cache, Tags.caches)
        # A per-process or non-atomic cache only matters where several processes serve.
        register(deployment_checks.check_rate_limit_cache_is_shared, Tags.caches, deploy=True)
        # Production settings only: the simulator answers on loopback in development.
        register(deployment_checks.check_production_endpoints, Tags.security, deploy=True)
        register(deployment_checks.check_installed_apps, Tags.compatibility)
        register(sign_in_checks.check_sign_in, Tags.security)
        register(deployment_checks.check_approval_middleware, Tags.urls)
        receivers.connect()
        tallies.connect()
        metrics.connect()
