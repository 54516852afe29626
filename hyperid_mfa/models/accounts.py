"""HyperIDAccount: which HyperID account signs in as which user."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class HyperIDAccount(models.Model):
    """A HyperID account (its issuer and subject, the ID token's ``iss`` and ``sub``)
    and the user it signs in as.

    ``hyperid_mfa.contrib.mozilla_oidc.HyperIDOIDCBackend`` finds the user of a
    sign-in here, never by email: a local account that holds the same email address
    does not receive the sign-in. django-allauth keeps the same link in its own
    ``SocialAccount``.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="hyperid_accounts",
        help_text=_("The user this HyperID account signs in as."),
        verbose_name=_("user"),
    )
    issuer = models.CharField(
        max_length=255,
        help_text=_("The HyperID issuer that names the account (the ID token's iss)."),
        verbose_name=_("issuer"),
    )
    subject = models.CharField(
        max_length=255,
        help_text=_("The account's identifier at that issuer (the ID token's sub)."),
        verbose_name=_("subject"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("HyperID account")
        verbose_name_plural = _("HyperID accounts")
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="hyperid_mfa_account_signs_in_one_user"
            ),
            models.UniqueConstraint(
                fields=["user", "issuer"], name="hyperid_mfa_account_one_per_user_and_issuer"
            ),
        ]

    def __str__(self) -> str:
        return f"HyperID account {self.subject} of user {self.user_id}"
