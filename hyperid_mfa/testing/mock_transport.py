"""The in-process transport behind :meth:`FakeHyperID.mock`: ``requests`` calls answered
through the ``responses`` library, without a socket.

``responses`` (the ``testing`` extra) is imported only when a mock starts: it is
needed for nothing else, and without it a mock raises ``MissingExtra``.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .responses import Handler

if TYPE_CHECKING:
    import responses
    from requests import PreparedRequest

__all__ = ["intercept_requests"]

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@contextlib.contextmanager
def intercept_requests(
    handle: Handler, base_url: str, issuer: str, rsps: responses.RequestsMock | None = None
) -> Iterator[None]:
    """Answer ``requests`` calls below ``base_url`` and ``issuer`` with ``handle``.

    In a new ``RequestsMock`` (any other URL raises ``ConnectionError``) unless
    ``rsps``, an already started one, is given: its rules then decide about other
    URLs, and the rules added here are removed on exit.
    """
    try:
        import responses as responses_lib
    except ImportError as err:
        # Here, not at the top: importing hyperid_mfa.testing needs no Django.
        from ..exceptions import MissingExtra

        raise MissingExtra("testing", "FakeHyperID.mock()", err.name) from err

    prefixes = [base_url]
    if not issuer.startswith(base_url + "/"):
        # Overlapping rules would make ``responses`` consume them one by one.
        prefixes.append(issuer)
    patterns = [re.compile(re.escape(prefix) + r"(?:[/?].*)?\Z") for prefix in prefixes]
    owned = rsps is None
    mock = responses_lib.RequestsMock(assert_all_requests_are_fired=False) if rsps is None else rsps

    def callback(request: PreparedRequest) -> Exception | tuple[int, Mapping[str, str], bytes]:
        return _answer(handle, request)

    added = [
        mock.add_callback(method, pattern, callback=callback, content_type=None)
        for pattern in patterns
        for method in _METHODS
    ]
    try:
        if owned:
            with mock:
                yield
        else:
            yield
    finally:
        if not owned:
            for rule in added:
                mock.remove(rule)


def _answer(
    handle: Handler, request: PreparedRequest
) -> Exception | tuple[int, Mapping[str, str], bytes]:
    import requests

    target = urlsplit(request.url or "")
    path = target.path + ("?" + target.query if target.query else "")
    body = request.body
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode("utf-8")
    response = handle(request.method or "GET", path, request.headers, bytes(body))
    if response.exception == "connection_error":
        return requests.exceptions.ConnectionError(
            "FakeHyperID: injected connection error", request=request
        )
    if response.exception == "timeout":
        return requests.exceptions.ReadTimeout(
            "FakeHyperID: injected read timeout", request=request
        )
    if response.delay > 0:
        read_timeout = _read_timeout(getattr(request, "req_kwargs", {}).get("timeout"))
        if read_timeout is not None and response.delay > read_timeout:
            time.sleep(read_timeout)
            return requests.exceptions.ReadTimeout(
                f"FakeHyperID: answer delayed {response.delay}s, past the read timeout",
                request=request,
            )
        time.sleep(response.delay)
    return response.status, response.headers, response.body


def _read_timeout(timeout: object) -> float | None:
    """The read part of a ``requests`` timeout (a number or a (connect, read) pair)."""
    if isinstance(timeout, tuple):
        timeout = timeout[1] if len(timeout) > 1 else None
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        return float(timeout)
    return None
