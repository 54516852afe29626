"""``python -m hyperid_mfa.testing.server``: a FakeHyperID served in a process of its own.

For the demo and cross-process tests::

    python -m hyperid_mfa.testing.server --port 8765

The first line printed names the address. Besides HyperID's paths, the server answers
the control endpoints below ``<base_url>/_fake/`` (see :mod:`.control`) and the
authenticator pages below ``/authenticator/`` (see :mod:`.authenticator`), so that
other processes can play the user's phone.

This is a test double: the control endpoints have no authentication whatsoever and
hand out tokens to anyone who asks. Bind it to loopback only (the default) and never
expose it on a network.

The server itself is :class:`~hyperid_mfa.testing.http_server.FakeHyperIDServer`,
also importable from here; in a test, start one with :meth:`FakeHyperID.serve`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading

from .authenticator import AUTHENTICATOR_PATH, Authenticator
from .fake import FakeHyperID
from .http_server import FakeHyperIDServer, Handler

__all__ = ["FakeHyperIDServer", "Handler", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run a FakeHyperID server with the authenticator pages until interrupted.

    Django projects have the same as a management command, ``hyperid_mfa_simulator``,
    which also takes its client id and secret from the project's settings.
    """
    parser = argparse.ArgumentParser(
        prog="python -m hyperid_mfa.testing.server",
        description="Serve an in-memory HyperID for demos and tests. "
        "Loopback only: the control endpoints have no authentication.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=8765, help="0 picks a free port (default: %(default)s)"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--transaction-ttl", type=float, default=300.0)
    parser.add_argument("--token-ttl", type=float, default=3600.0)
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        metavar="URI",
        help="a redirect URI of the sign-in's client (repeatable); loopback ones need none",
    )
    args = parser.parse_args(argv)
    fake = FakeHyperID(
        base_url=None, transaction_ttl=args.transaction_ttl, token_ttl=args.token_ttl
    )
    for uri in args.redirect_uri:
        try:
            fake.register_redirect_uri(uri)
        except ValueError as err:
            parser.error(str(err))
    try:
        server = fake.serve(
            args.host, args.port, latency=args.latency, handler=Authenticator(fake).handle
        )
    except OSError as err:
        parser.exit(2, f"{parser.prog}: cannot listen on {args.host}:{args.port}: {err.strerror}\n")
    with server:
        # The first line names the address, so a parent process started with --port 0 can read it.
        print(f"FakeHyperID serving at {server.url}", flush=True)
        print(f"API_BASE_URL={fake.base_url} ISSUER={fake.issuer}", flush=True)
        print(f"authenticator: {server.url}{AUTHENTICATOR_PATH}", flush=True)
        print(f"OpenID discovery: {fake.discovery_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
