"""Run a command with SIGINT, SIGTERM, SIGHUP and SIGQUIT back to their default handling.

    python scripts/_default_signals.py COMMAND [ARG...]

A shell cannot undo an ignored signal it inherited, and passes the ignore on to
every program it starts. A background job of a non-interactive shell starts with
SIGINT ignored, so ./scripts/demo started that way (``./scripts/demo &`` in a script,
say) would start servers that Ctrl-C cannot stop: Python raises KeyboardInterrupt
only when SIGINT was at its default handling when it started. This program resets
the signals, then becomes the command (exec): the command keeps this process's id,
which is the one the demo script waits for and signals.
"""

from __future__ import annotations

import os
import signal
import sys

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def main(argv: list[str]) -> int:
    if not argv:
        print(f"usage: {sys.argv[0]} COMMAND [ARG...]", file=sys.stderr)
        return 2
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # a blocked signal stays blocked too
    sys.stdout.flush()
    # Only ever the demo's own programs, given by the demo script.
    os.execvp(argv[0], argv)  # noqa: S606


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
