"""Whether a server may listen on HOST:PORT; exits 1 with the reason when it may not.

    python scripts/_port_free.py HOST PORT

./scripts/demo asks before it starts anything, so that a second demo (or another
server on the port) changes nothing and gets a clear message.
"""

from __future__ import annotations

import socket
import sys


def why_not_free(host: str, port: int) -> str | None:
    """None when something may listen on ``host:port``; else the system's reason."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        # As the servers do: a port whose last connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            return err.strerror or str(err)
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        print(f"usage: {sys.argv[0]} HOST PORT", file=sys.stderr)
        return 2
    reason = why_not_free(argv[0], int(argv[1]))
    if reason is None:
        return 0
    print(reason)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
