"""``manage.py hyperid_mfa_purge --older-than 30d``: retention of finished MFA requests."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from hyperid_mfa import services
from hyperid_mfa.management.base import Duration, HyperIDMFACommand
from hyperid_mfa.services import retention


class Command(HyperIDMFACommand):
    help = (
        "Delete finished MFA requests (approved, denied, expired, canceled, failed, "
        "consumed) created longer ago than --older-than. Pending requests are never deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            required=True,
            type=Duration(),
            metavar="AGE",
            help="A number and a unit: s, m, h or d (e.g. 30d, 12h).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be deleted; delete nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        age = retention.parse_duration(options["older_than"])
        count = services.purge_finished(age, dry_run=options["dry_run"])
        if options["verbosity"] >= 1:
            verb = "Would delete" if options["dry_run"] else "Deleted"
            self.stdout.write(
                f"{verb} {count} finished MFA request(s) created more than "
                f"{options['older_than']} ago."
            )
