"""``manage.py hyperid_mfa_simulator``: a local HyperID, with web pages playing the phone.

Serves :class:`~hyperid_mfa.testing.FakeHyperID` over HTTP, as stripe-mock or moto
stand in for their services: the app's real HTTP client talks to it exactly as to
HyperID (minus TLS). Its authenticator pages (``/authenticator/``) list each user's
pending pushes and answer them with number matching; see
:mod:`hyperid_mfa.testing.authenticator`.

It is also an OpenID provider at its issuer (``<base>/auth/realms/HyperID``), so that
the site signs its users in with "Sign in with HyperID" through django-allauth's
``openid_connect`` provider or mozilla-django-oidc, unmodified: point them at the
discovery URL the banner prints. The sign-in page takes any account name and makes
the account, with a simulated phone, when it is new. The site's redirect URI must be
registered with ``--redirect-uri`` unless it is a loopback URL (``http://127.0.0.1:PORT/``,
``http://localhost:PORT/``), which is accepted on any port unless
``--no-loopback-redirect-uris``.

By default it listens where the project's ``HYPERID_MFA["API_BASE_URL"]`` points when
that is a loopback ``http://`` URL, else on 127.0.0.1:8765, and it accepts the
project's ``CLIENT_ID``/``CLIENT_SECRET`` at its token endpoint so that token
refreshes work. Everything lives in memory: stopping it forgets every account, token
and push (the site's users then sign in with HyperID again). Transaction ids start
from the clock, so that a restarted simulator never hands out an id that the
project's database already holds from an earlier run.

It misbehaves on request, so that a developer sees how the site copes: ``--down``
(every MFA call answered HyperID's "service unavailable", ``{"result": -1}``),
``--fail-rate SHARE`` (that share of the MFA calls, drawn with ``--seed``), and
``--fault KIND[:NAME=VALUE,...]`` for any of FakeHyperID's faults (see
:func:`hyperid_mfa.testing.faults.parse_fault`). The control endpoints
(``/_fake/faults``) change them while it runs.

A test double, never a deployment: anyone who reaches its port can take tokens and
approve pushes. It refuses to listen beyond loopback unless told ``--allow-remote``.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import secrets
import signal
import threading
import time
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.core.management.base import CommandError, CommandParser

from hyperid_mfa.conf import mfa_settings
from hyperid_mfa.constants import TRANSACTION_ID_MAX, TRANSACTION_ID_MIN, Result
from hyperid_mfa.management.base import (
    ArgumentType,
    Checked,
    HyperIDMFACommand,
    Seconds,
    Share,
    WholeNumber,
)
from hyperid_mfa.testing import Authenticator, FakeHyperID
from hyperid_mfa.testing.authenticator import AUTHENTICATOR_PATH
from hyperid_mfa.testing.clients import checked_redirect_uri
from hyperid_mfa.testing.faults import FAULTS, parse_fault

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: Half the id space at most for the first push: room for the ids that follow it.
HIGHEST_FIRST_TRANSACTION_ID = TRANSACTION_ID_MAX // 2
#: What --down and --fail-rate answer: HyperID's own "service unavailable", which
#: tells the site that nothing happened (no push was sent), to each of the MFA calls.
UNAVAILABLE_RESULT = int(Result.SERVICE_UNAVAILABLE)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _simulated_url(url: object) -> str | None:
    """``url`` when it can name this simulator (a loopback ``http://`` URL), else None."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not is_loopback(parts.hostname):
        return None
    return url.rstrip("/")


class FaultOption(NamedTuple):
    """One ``--fault``: as written, and as :meth:`FakeHyperID.inject` takes it."""

    text: str
    fault: str
    keywords: dict[str, Any]


class FaultSpelling(ArgumentType):
    """``KIND[:NAME=VALUE,...]``, read by :func:`parse_fault`."""

    def __call__(self, value: object) -> FaultOption:
        if isinstance(value, FaultOption):
            return value
        if not isinstance(value, str):
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a fault: write KIND[:NAME=VALUE,...]"
            )
        try:
            fault, keywords = parse_fault(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return FaultOption(value.strip(), fault, keywords)


class Command(HyperIDMFACommand):
    help = (
        "Serve a simulated HyperID (FakeHyperID) for local development, with "
        "authenticator pages that play each user's phone. A test double: it keeps "
        "everything in memory and has no authentication, so it listens on loopback only."
    )
    # The simulator does not depend on the project being correctly configured, and
    # the dev server next to it reports the checks anyway.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host",
            help="Address to listen on. Default: the host of HYPERID_MFA['API_BASE_URL'] "
            f"when it is a loopback http:// URL, else {DEFAULT_HOST}.",
        )
        parser.add_argument(
            "--port",
            type=WholeNumber(minimum=0, maximum=65535),
            help="Port to listen on; 0 picks a free one. Default: the port of "
            f"HYPERID_MFA['API_BASE_URL'] when it is a loopback http:// URL, else {DEFAULT_PORT}.",
        )
        parser.add_argument(
            "--allow-remote",
            action="store_true",
            help="Allow a --host other than loopback (a container, say). Anyone who can "
            "reach the port can then take tokens and approve pushes.",
        )
        parser.add_argument(
            "--transaction-ttl",
            type=Seconds(),
            default=300.0,
            help="Seconds a push waits for an answer before HyperID expires it "
            "(default: %(default)s).",
        )
        parser.add_argument(
            "--token-ttl",
            type=Seconds(),
            default=3600.0,
            help="Lifetime of the access tokens it issues, in seconds (default: %(default)s).",
        )
        parser.add_argument(
            "--first-transaction-id",
            type=WholeNumber(minimum=TRANSACTION_ID_MIN, maximum=HIGHEST_FIRST_TRANSACTION_ID),
            help="The id of the first push. Default: milliseconds since the epoch, so "
            "ids keep growing across restarts, as the project's database expects.",
        )
        parser.add_argument(
            "--redirect-uri",
            type=Checked(checked_redirect_uri),
            action="append",
            dest="redirect_uris",
            default=[],
            metavar="URI",
            help="A redirect URI of the site's sign-in callback, matched exactly; repeat "
            "for several. Loopback URIs need none.",
        )
        parser.add_argument(
            "--no-loopback-redirect-uris",
            action="store_false",
            dest="allow_loopback_redirect_uris",
            help="Accept only the --redirect-uri ones, not any loopback URI.",
        )
        parser.add_argument(
            "--latency",
            type=Seconds(zero=True),
            default=0.0,
            help="Seconds added to every answer, to see how the site copes with a slow "
            "HyperID (default: %(default)s).",
        )
        faults = parser.add_argument_group(
            "faults",
            "Make HyperID misbehave, to see the site's pages for it. One call meets at most "
            "one fault: the first that applies, --fault ones in the order given, then "
            "--down's or --fail-rate's. POST, GET and DELETE /_fake/faults change them "
            "while the simulator runs.",
        )
        faults.add_argument(
            "--down",
            action="store_true",
            help="Answer every MFA call (start, status-get, cancel, availability) with "
            'HyperID\'s "service unavailable" ({"result": -1}); sign-in keeps working.',
        )
        faults.add_argument(
            "--fail-rate",
            type=Share(),
            metavar="SHARE",
            help="Answer this share of the MFA calls, from 0 to 1, as --down does; which "
            "calls is drawn at random (see --seed).",
        )
        faults.add_argument(
            "--fault",
            type=FaultSpelling(),
            action="append",
            dest="faults",
            default=[],
            metavar="KIND[:NAME=VALUE,...]",
            help=f"Apply a fault to every matching call until cleared; repeat for several. "
            f"KIND: {', '.join(sorted(FAULTS))}. NAME: the fault's parameters (seconds, "
            "retry_after, result, value, field), call=NAME (one call: start, status-get, "
            "cancel, availability, token), share=0..1 (that share of the calls), times=N. "
            "E.g. --fault http_503:retry_after=30,call=start",
        )
        faults.add_argument(
            "--seed",
            type=WholeNumber(minimum=0),
            help="Seed of the draws of --fail-rate and of the faults' shares, to replay a "
            "run. Default: a random one, printed at start.",
        )

    def check_arguments(self, options: dict[str, Any]) -> None:
        # Only --host can name another machine: a default comes from a loopback URL.
        host = options["host"]
        if host and not is_loopback(host) and not options["allow_remote"]:
            self.usage_error(
                f"refusing to listen on {host}: the simulator has no authentication, so "
                "anyone who reaches it could take tokens and approve pushes. Use a loopback "
                "address, or add --allow-remote if you really mean it."
            )
        if options["down"] and options["fail_rate"] is not None:
            self.usage_error(
                "--down fails every MFA call already: give --fail-rate or --down, not both"
            )

    def handle(self, *args: Any, **options: Any) -> None:
        configured = _simulated_url(mfa_settings.API_BASE_URL)
        host, port = self._address(options, configured)
        if options["first_transaction_id"] is None:
            options["first_transaction_id"] = int(time.time() * 1000)
        if options["seed"] is None:
            options["seed"] = secrets.randbelow(2**32)
        fake = self._fake(configured, options)
        try:
            server = fake.serve(
                host, port, latency=options["latency"], handler=Authenticator(fake).handle
            )
        except OSError as err:
            hint = ""
            if err.errno == errno.EADDRINUSE:
                hint = (
                    " Another simulator (or the demo) is probably running: stop it, or "
                    "choose another --port."
                )
            raise CommandError(f"Cannot listen on {host}:{port}: {err.strerror}.{hint}") from None
        with server:
            self._announce(server.url, fake, configured, options["verbosity"])
            self._announce_faults(fake, options)
            self._serve_until_stopped()
        if options["verbosity"] >= 1:
            self.stdout.write("HyperID simulator stopped.")

    def _address(self, options: dict[str, Any], configured: str | None) -> tuple[str, int]:
        parts = urlsplit(configured) if configured else None
        host = options["host"] or (parts.hostname if parts else None) or DEFAULT_HOST
        port = options["port"]
        if port is None:
            port = (parts.port if parts else None) or DEFAULT_PORT
        return host, port

    def _fake(self, configured: str | None, options: dict[str, Any]) -> FakeHyperID:
        issuer = _simulated_url(mfa_settings.ISSUER)
        if configured is None or issuer is None:
            issuer = None  # derived from the base URL: <base>/auth/realms/HyperID
        # serve() moves both URLs to the server's address and keeps their paths, so
        # a project that mounts HyperID below a path keeps working.
        fake = FakeHyperID(
            base_url=configured,
            issuer=issuer,
            transaction_ttl=options["transaction_ttl"],
            token_ttl=options["token_ttl"],
            first_transaction_id=options["first_transaction_id"],
            allow_loopback_redirect_uris=options["allow_loopback_redirect_uris"],
            seed=options["seed"],
        )
        for option in options["faults"]:
            fake.inject(option.fault, **option.keywords)  # checked already: FaultSpelling
        share = 1.0 if options["down"] else options["fail_rate"]
        if share:
            fake.inject("result", result=UNAVAILABLE_RESULT, times=None, share=share)
        for uri in options["redirect_uris"]:
            fake.register_redirect_uri(uri)  # checked already: Checked(checked_redirect_uri)
        # The project refreshes tokens with its own client credentials.
        if mfa_settings.CLIENT_ID:
            fake.client_id = str(mfa_settings.CLIENT_ID)
        if mfa_settings.CLIENT_SECRET:
            fake.client_secret = str(mfa_settings.CLIENT_SECRET)
        return fake

    def _announce(
        self, url: str, fake: FakeHyperID, configured: str | None, verbosity: int
    ) -> None:
        if verbosity >= 1:
            # The first line names the address: a parent that passed --port 0 reads it.
            self.stdout.write(f"HyperID simulator at {url} (a test double: not HyperID)")
            self.stdout.write(f"  phones (authenticator pages): {url}{AUTHENTICATOR_PATH}")
            self.stdout.write(f"  OpenID provider, issuer: {fake.issuer}")
            self.stdout.write(f"    discovery: {fake.discovery_url}")
            loopback = " and any loopback URI" if fake.allow_loopback_redirect_uris else ""
            registered = ", ".join(fake.redirect_uris) or "none registered"
            self.stdout.write(
                f"    client_id: {fake.client_id}; redirect URIs: {registered}{loopback}"
            )
            self.stdout.write(
                f'  HYPERID_MFA = {{"API_BASE_URL": "{fake.base_url}", "ISSUER": "{fake.issuer}"}}'
            )
            self.stdout.write(
                "No authentication: whoever reaches this port can take tokens and approve "
                "pushes. Quit with CONTROL-C."
            )
        if configured != fake.base_url or _simulated_url(mfa_settings.ISSUER) != fake.issuer:
            self.stderr.write(
                f"Warning: this project's HYPERID_MFA points at {mfa_settings.API_BASE_URL} "
                f"(issuer {mfa_settings.ISSUER}), not at this simulator: set API_BASE_URL "
                f"to {fake.base_url} and ISSUER to {fake.issuer} to use it."
            )
        self.stdout.flush()

    def _announce_faults(self, fake: FakeHyperID, options: dict[str, Any]) -> None:
        if options["verbosity"] < 1 or not fake.faults():
            return
        faults = [option.text for option in options["faults"]]
        if options["down"]:
            faults.append('--down: every MFA call answers {"result": -1}')
        elif options["fail_rate"]:
            faults.append(
                f'--fail-rate {options["fail_rate"]:g}: MFA calls answer {{"result": -1}}'
            )
        self.stdout.write(f"  faults (seed {options['seed']}): {'; '.join(faults)}")
        self.stdout.write(f"    clear them: curl -X DELETE {fake.base_url}/_fake/faults")
        self.stdout.flush()

    def _serve_until_stopped(self) -> None:
        """Block until Ctrl-C or SIGTERM (how the demo script stops it)."""
        previous: Any = None
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread:
            previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            while True:
                time.sleep(3600)  # signals interrupt the sleep
        except (KeyboardInterrupt, _Terminated):
            pass
        finally:
            if in_main_thread and previous is not None:
                signal.signal(signal.SIGTERM, previous)


class _Terminated(Exception):
    """SIGTERM, raised in the main thread as Ctrl-C raises KeyboardInterrupt."""


def _terminate(signum: int, frame: Any) -> None:
    # Raising, rather than setting an Event, takes no lock inside the handler: a
    # handler that waits for a lock the interrupted code holds never returns.
    raise _Terminated
