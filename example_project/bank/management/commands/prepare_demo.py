"""``manage.py prepare_demo``: the demo's users, everyone signed out.

alice is a bank customer whose HyperID account is ``alice`` on the simulator: signing
in with HyperID as alice lands on her. Her password serves the README's API examples
(Basic authentication) only; the site signs her in through HyperID. admin approves
the admin's protected changes (a payee's IBAN, bulk refunds) on the phone of the
HyperID account ``admin``: the admin's approval page offers to sign in with HyperID.
Every start also resets the bank's demo data: alice's payees, and 14 refunds
waiting for staff (of transfers by carol, a customer who never signs in).
"""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.management.base import BaseCommand
from django.db import transaction

from bank.models import Payee, Refund, Transfer
from hyperid_mfa.models import HyperIDToken

# (username, password, is_superuser, what for). Fixed and printed: a local demo only.
DEMO_USERS = [
    ("alice", "alice-demo", False, "a bank customer: sign in with HyperID as alice"),
    ("admin", "admin-demo", True, "superuser: /admin/"),
]
#: The HyperID account (subject) of each demo user who signs in with HyperID.
HYPERID_SUBJECTS = {"alice": "alice", "admin": "admin"}
#: alice's payees: (name, IBAN).
DEMO_PAYEES = [
    ("Bob's bakery", "DE89370400440532013000"),
    ("City utilities", "DE44500105175407324931"),
    ("Landlord", "FR1420041010050500013M02606"),
]
#: Refunds waiting for staff in the admin, at least: one bulk action approves them all.
DEMO_REFUNDS = 14


class Command(BaseCommand):
    help = (
        "Create the demo users (or reset them to their demo passwords) and sign everyone "
        "out, then print the credentials. ./scripts/demo runs it on every start."
    )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        for username, password, is_superuser, _purpose in DEMO_USERS:
            user, _created = user_model.objects.get_or_create(username=username)
            user.set_password(password)
            user.is_active = True
            user.is_staff = user.is_superuser = is_superuser
            user.save()
            subject = HYPERID_SUBJECTS.get(username)
            if subject is not None:
                SocialAccount.objects.update_or_create(
                    provider="hyperid", uid=subject, defaults={"user": user}
                )
        prepare_bank(user_model.objects.get(username="alice"))
        # The simulator starts empty on every run, so HyperID tokens kept from an
        # earlier run are worthless: everyone signs in with HyperID again.
        HyperIDToken.objects.all().delete()
        Session.objects.all().delete()
        if options["verbosity"] >= 1:
            width = max(len(f"{name} / {password}") for name, password, *_ in DEMO_USERS)
            for username, password, _is_superuser, purpose in DEMO_USERS:
                self.stdout.write(f"  {f'{username} / {password}':<{width}}  {purpose}")


def prepare_bank(customer: Any) -> None:
    """alice's payees, and DEMO_REFUNDS refunds waiting, all as the demo starts them."""
    for name, iban in DEMO_PAYEES:
        Payee.objects.update_or_create(owner=customer, name=name, defaults={"iban": iban})
    # Of someone else's transfers: alice's own list shows only what she transferred.
    carol, created = get_user_model().objects.get_or_create(username="carol")
    if created:
        carol.set_unusable_password()
        carol.save()
    Refund.objects.update(state=Refund.State.REQUESTED, refunded_at=None)
    for number in range(Refund.objects.count() + 1, DEMO_REFUNDS + 1):
        transfer = Transfer.objects.create(
            user=carol, amount=10 * number, payee="Corner shop", channel=Transfer.Channel.WEB
        )
        Refund.objects.create(transfer=transfer, amount=transfer.amount, reason="Order cancelled")
