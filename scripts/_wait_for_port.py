"""Wait until a server started in the background accepts connections on 127.0.0.1.

    python scripts/_wait_for_port.py PORT PID [SECONDS]

Exits 0 once something accepts connections on the port; 1 as soon as process PID
(the server) is gone, or after SECONDS (default 30).
"""

from __future__ import annotations

import os
import socket
import sys
import time


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def wait_for_port(port: int, pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not running(pid):
            return False
        if accepts(port):
            return True
        time.sleep(0.1)
    return False


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or not all(arg.isdigit() for arg in argv[:2]):
        print(f"usage: {sys.argv[0]} PORT PID [SECONDS]", file=sys.stderr)
        return 2
    seconds = float(argv[2]) if len(argv) == 3 else 30.0
    return 0 if wait_for_port(int(argv[0]), int(argv[1]), seconds) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
