from django.apps import AppConfig


class BankConfig(AppConfig):
    """A pretend bank: the integrator's side of the example project."""

    name = "bank"
    verbose_name = "Example bank"
    default_auto_field = "django.db.models.BigAutoField"
