"""How the fake answers a request: which call it is, then faults and the call log around it.

The path alone decides (hosts are ignored): the control endpoints below the base
path, the MFA calls at their paths below it, the token endpoint and the rest of the
OpenID provider (:mod:`.provider`) below the issuer's.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from ..constants import TOKEN_ENDPOINT_PATH
from . import mfa, oidc, provider
from .calls import CALL_TOKEN, CallLog
from .control import CONTROL_PREFIX, ControlledFake, control
from .encoding import is_int
from .faults import FaultQueue
from .responses import Answer, FakeResponse, json_response
from .state import HyperIDState

__all__ = ["Router"]


class Router:
    """Answers each request to one fake; the caller holds the fake's lock."""

    def __init__(self, state: HyperIDState, faults: FaultQueue, log: CallLog) -> None:
        self._state = state
        self._faults = faults
        self._log = log

    def handle(
        self,
        fake: ControlledFake,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> FakeResponse:
        """Answer one request; ``fake``, the fake's public face, is what ``/_fake/`` drives.

        Passed in rather than kept, so that the fake and its router hold no reference
        cycle.
        """
        method = method.upper()
        target = urlsplit(path)
        route = target.path
        lowered = {key.lower(): value for key, value in headers.items()}
        if isinstance(body, str):
            body = body.encode("utf-8")
        base_path, issuer_path = self._state.route_paths()
        if route.startswith(base_path + CONTROL_PREFIX):
            return control(fake, method, route[len(base_path) :], target.query, body)
        endpoint = route[len(issuer_path) :] if route.startswith(issuer_path + "/") else None
        if endpoint is not None and endpoint != TOKEN_ENDPOINT_PATH:
            # The sign-in's endpoints: not calls of the app's, so neither logged nor faulted.
            response = provider.answer(
                self._state, method, route, endpoint, target.query, lowered, body
            )
            if response is not None:
                return response
        name = mfa.PATHS.get(route[len(base_path) :]) if route.startswith(base_path) else None
        if route == issuer_path + TOKEN_ENDPOINT_PATH:
            name = CALL_TOKEN
        if name is None:
            return json_response(404, {"error": "not_found"})
        if method != "POST":
            return json_response(405, {"error": "method_not_allowed"}, {"Allow": "POST"})
        return self._call(name, lowered, body)

    def _call(self, name: str, headers: Mapping[str, str], body: bytes) -> FakeResponse:
        """Answer HyperID call ``name`` as any waiting fault bends it, and log it."""
        draw = self._faults.draw(name)
        fault = draw.instead()
        if fault is not None:
            response = fault.answer_instead()
            subject, transaction_id = (
                (None, None) if name == CALL_TOKEN else mfa.peek(self._state, name, headers, body)
            )
            http_status = None if response.disconnect else response.status
            self._log.record(name, transaction_id, subject, http_status, fault.result(), fault.kind)
            return response
        answer: Answer
        if name == CALL_TOKEN:
            answer = oidc.token_endpoint(self._state, headers, body)
            result = None
        else:
            answer = mfa.answer_call(self._state, name, headers, body)
            result = answer.payload.get("result")
        fault = draw.after(answer)
        response = (
            answer.response()
            if fault is None
            else fault.answer_after(answer, self._state.signing_key)
        )
        self._log.record(
            name,
            answer.transaction_id,
            answer.subject,
            answer.status,
            result if is_int(result) else None,
            None if fault is None else fault.kind,
        )
        return response
