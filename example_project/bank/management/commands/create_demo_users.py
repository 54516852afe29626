"""``manage.py create_demo_users``: the demo's customer and superuser, with known passwords."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

# (username, password, is_superuser, what for). Fixed and printed: a local demo only.
DEMO_USERS = [
    ("alice", "alice-demo", False, "a bank customer: sign in on the site"),
    ("admin", "admin-demo", True, "superuser: /admin/"),
]


class Command(BaseCommand):
    help = (
        "Create the demo users, or reset them to their demo passwords, and print the "
        "credentials. Safe to run again."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        for username, password, is_superuser, _purpose in DEMO_USERS:
            user, _created = user_model.objects.get_or_create(username=username)
            user.set_password(password)
            user.is_active = True
            user.is_staff = user.is_superuser = is_superuser
            user.save()
        if options["verbosity"] >= 1:
            width = max(len(f"{name} / {password}") for name, password, *_ in DEMO_USERS)
            for username, password, _is_superuser, purpose in DEMO_USERS:
                self.stdout.write(f"  {f'{username} / {password}':<{width}}  {purpose}")
