from django.conf import settings
from django.db import models


class Transfer(models.Model):
    """A transfer the gated views made: one row per run of a view."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    payee = models.CharField(max_length=100)
    channel = models.CharField(max_length=10, default="web")

    def __str__(self) -> str:
        return f"{self.amount:.2f} EUR to {self.payee}"
