"""``manage.py hyperid_mfa_rotate_keys``: re-encrypt stored HyperID tokens under the newest key.

Run it after putting a new key first in ``HYPERID_MFA["TOKEN_ENCRYPTION_KEYS"]``
(keeping the old ones after it), then remove the old keys. Run it once after
upgrading from a version that derived keys from ``SECRET_KEY`` by bare SHA-256 too:
it moves those tokens under the HKDF-derived key (see ``hyperid_mfa.crypto``).
Rows already under the newest key are left alone, so running it again is cheap.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from hyperid_mfa.exceptions import UndecryptableTokens
from hyperid_mfa.management.base import HyperIDMFACommand, WholeNumber
from hyperid_mfa.tokens import store as tokens


class Command(HyperIDMFACommand):
    help = (
        "Re-encrypt the stored HyperID tokens that are not under the first key of "
        "HYPERID_MFA['TOKEN_ENCRYPTION_KEYS'] (or the key derived from SECRET_KEY). "
        "Changes nothing when some token cannot be decrypted with any configured key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=WholeNumber(minimum=1),
            default=tokens.ROTATION_BATCH_SIZE,
            metavar="N",
            help="Rows rewritten per transaction (default %(default)s).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count the rows that would be re-encrypted; change nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        try:
            count = tokens.rotate_encryption(options["batch_size"], dry_run=dry_run)
        except UndecryptableTokens as err:
            raise CommandError(
                f"{err}. Put the key they were encrypted with back in "
                "HYPERID_MFA['TOKEN_ENCRYPTION_KEYS'] (after the first key; for keys "
                "derived from SECRET_KEY, the old secret in SECRET_KEY_FALLBACKS) and run "
                "this command again. If that key is lost, delete those rows "
                "(hyperid_mfa.tokens.forget_tokens(user)): their users sign in with "
                "HyperID again."
            ) from err
        if options["verbosity"] >= 1:
            verb = "Would re-encrypt" if dry_run else "Re-encrypted"
            self.stdout.write(f"{verb} {count} stored HyperID token row(s) under the newest key.")
