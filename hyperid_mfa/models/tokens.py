"""HyperIDToken: a user's HyperID tokens, encrypted at rest."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class HyperIDToken(models.Model):
    """A user's HyperID tokens, Fernet-encrypted at rest (see ``hyperid_mfa.tokens``).

    Read and write them through ``hyperid_mfa.tokens``; the columns hold ciphertext.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="hyperid_token",
        help_text=_("Whose tokens these are."),
        verbose_name=_("user"),
    )
    access_token_encrypted = models.TextField(
        editable=False,
        help_text=_("The access token, encrypted."),
        verbose_name=_("access token encrypted"),
    )
    refresh_token_encrypted = models.TextField(
        blank=True,
        default="",
        editable=False,
        help_text=_("The refresh token, encrypted."),
        verbose_name=_("refresh token encrypted"),
    )
    access_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the access token expires, if known."),
        verbose_name=_("access expires at"),
    )
    refresh_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the refresh token expires, if known."),
        verbose_name=_("refresh expires at"),
    )
    refreshed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the app last refreshed the access token."),
        verbose_name=_("refreshed at"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("HyperID token")
        verbose_name_plural = _("HyperID tokens")

    def __str__(self) -> str:
        return f"HyperID tokens of user {self.user_id}"

    def __repr__(self) -> str:
        return f"<HyperIDToken user_id={self.user_id} access_expires_at={self.access_expires_at}>"

    @property
    def has_refresh_token(self) -> bool:
        return bool(self.refresh_token_encrypted)

    def access_token_expired(self, *, leeway: float = 0, now: datetime | None = None) -> bool:
        if self.access_expires_at is None:
            return False
        return (now or timezone.now()) + timedelta(seconds=leeway) >= self.access_expires_at
