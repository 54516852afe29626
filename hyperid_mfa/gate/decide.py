"""The gate's decision: may this gated view run now? It knows no HTTP.

For one request to a gated view, :meth:`Gate.check` decides, in this order:

0. the request was sent on behalf of another site, or is a prefetch
   (:mod:`hyperid_mfa.gate.origins`): refuse it, before anything is read, consumed or sent
   (the other site chose its values; a prefetch is no click);
1. a usable approval for (user, action, fingerprint) exists: consume it, let the view run;
2. a request for the same triple is pending: refresh it (coalesced); if it is approved
   now, consume it and let the view run, else answer "pending";
3. otherwise send a new push (unless the user is over the push limit) and answer
   "pending". Its question is ``question=``, or names every value the approval binds
   (:mod:`hyperid_mfa.gate.questions`).

``require_approval`` (:mod:`hyperid_mfa.gate.approval`) asks the same gate from inside a
view, with the values the view validated (``values=``) bound instead of the body.

A gate with ``window=`` first looks for an approval window of its scope that this
user opened in this session (:mod:`hyperid_mfa.services.windows`): one lets the view run
without an approval; and an approval it consumes opens one.

Everything else is a refusal that carries its own meaning (see
:mod:`hyperid_mfa.exceptions`): HyperID unreachable, an unusable token, too many
pushes, an unreadable request, a gate inside the view's transaction, and a service
the gate needs failing at any step (the database, the cache:
:mod:`hyperid_mfa.services.dependencies`).
:mod:`hyperid_mfa.gate.rendering` turns a :class:`Decision` into the HTTP answer of the
decorator, the mixin or the DRF permission.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from .. import audit, services
from ..adapter import get_adapter
from ..exceptions import (
    NOT_AUTHENTICATED,
    PENDING,
    CrossSiteRequest,
    HyperIDConfigurationError,
    HyperIDError,
    MFARefusal,
    QuestionNotShowable,
    RequestUnreadable,
    SiteMisconfigured,
)
from ..models import ApprovalWindow, MFARequest
from ..services import dependencies, windows
from . import atomicity, fingerprint, origins, questions
from .fingerprint import Binder, django_request
from .values import BoundValues

logger = logging.getLogger("hyperid_mfa")

#: Seconds a client is asked to wait when a retryable refusal said nothing.
DEFAULT_RETRY_AFTER = 5

#: The longest approval window a gate may open, in seconds (4 hours).
MAX_WINDOW = 4 * 60 * 60


@dataclass(frozen=True)
class Decision:
    """What the gate decided. ``allowed`` lets the view run; otherwise the rest is
    the answer: its ``code``, ``status``, the user's ``detail``, the request it is
    about (if any) and, for a refusal worth retrying, ``retry_after`` seconds; the
    page's heading (``title``), and whether a push may still reach the phone although
    none is followed (``push_may_arrive``: the user should deny it)."""

    allowed: bool
    code: str = ""
    status: int = 200
    detail: str = ""
    mfa_request: MFARequest | None = None
    retry_after: int | None = None
    title: str = ""
    push_may_arrive: bool = False

    @classmethod
    def pending(cls, mfa_request: MFARequest) -> Decision:
        detail = _(
            "Approve this action in the HyperID Authenticator app: check that it shows %(code)s."
        ) % {"code": mfa_request.code}
        return cls(
            False, PENDING, 403, detail, mfa_request, title=_("Approve this action on your phone")
        )

    @classmethod
    def not_signed_in(cls) -> Decision:
        return cls(False, NOT_AUTHENTICATED, 401, _("Sign in to continue."))

    @classmethod
    def refused(cls, refusal: MFARefusal, mfa_request: MFARequest | None = None) -> Decision:
        retry_after = None
        if refusal.retryable:
            wait = refusal.retry_after
            retry_after = DEFAULT_RETRY_AFTER if wait is None else max(1, int(wait + 0.999))
        return cls(
            False,
            refusal.code,
            refusal.status_code,
            refusal.user_text(),
            mfa_request,
            retry_after,
            title=str(refusal.user_title),
            push_may_arrive=refusal.push_may_arrive,
        )


ALLOWED = Decision(True)


class Gate:
    """One gated action: what it is called, what is bound, how the push reads."""

    def __init__(
        self,
        action: str,
        *,
        question: str | Callable[..., str] | None = None,
        bind: Binder = None,
        max_age: float | None = None,
        methods: Iterable[str] | None = None,
        window: int | None = None,
        scope: str | None = None,
        bind_window: bool = True,
        question_hint: str | None = None,
        values: BoundValues | None = None,
    ) -> None:
        if not isinstance(action, str) or not action:
            raise TypeError("the gated action must be a non-empty string")
        check_window_options(window, scope)
        if values is not None and bind is not None:
            raise TypeError("values= replaces the body in the binding: give it or bind=, not both")
        if isinstance(bind, str):
            raise TypeError("bind= takes a sequence of field names or a callable, not a string")
        if isinstance(methods, str):
            raise TypeError("methods= takes a sequence of method names, not a string")
        self.action = action
        self.question = question
        self.bind = bind
        self.max_age = max_age
        #: The methods gated; None: every method (fail closed).
        self.methods = None if methods is None else frozenset(m.upper() for m in methods)
        #: Seconds an approval of this gate opens a window for; None: no window.
        self.window = window
        #: The window's scope: the gated actions that run inside it (default: this action).
        self.scope = (scope or action) if window is not None else None
        #: Whether ``bind`` also keeps a window to the values that opened it (as the
        #: contract says of an explicit ``bind=``); False where ``bind`` is the
        #: caller's own default binding, as the admin's is.
        self.bind_window = bind_window
        #: What the developers should do when the question is too long for the phone,
        #: where that is not "pass question=" (the admin's hook, say).
        self.question_hint = question_hint
        #: The values the view validated, bound instead of the body (require_approval).
        self.values = values

    def gates(self, request: Any) -> bool:
        """Whether this request's method is gated (others run the view ungated)."""
        return self.methods is None or str(request.method).upper() in self.methods

    def __repr__(self) -> str:
        return f"<Gate {self.action!r}>"

    def check(
        self, request: Any, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> Decision:
        """Decide whether the view may run now (see the module docstring).

        A service the gate needs that fails (the database, the cache) is a refusal
        like any other, whatever step it failed in: the view does not run, and
        nothing was sent or consumed that is not recorded (``dependencies.py``).
        """
        try:
            return self._check(request, args, kwargs or {})
        except dependencies.failures() as err:
            refusal = dependencies.refusal_for(err)
            if refusal is None:  # pragma: no cover - failures() lists what it knows
                raise
            return self._refused(refusal)

    def _check(self, request: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Decision:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return Decision.not_signed_in()
        unasked = _unasked(request)
        if unasked is not None:
            # Another site chose these values, or the browser guessed at a click: no
            # push, no approval or window consumed.
            with audit.request_context(django_request(request)):
                audit.log(f"refused: {unasked} ({self.action})", user_id=user.pk)
            return self._refused(CrossSiteRequest())
        try:
            self._refuse_inside_a_transaction()
            fp, window_key = self._bind(request, user, args, kwargs)
            self._refuse_missing_fields(request)
            with audit.request_context(django_request(request)):
                # A link opened from outside the browser may be the attacker's: it
                # asks the phone (which names every value), never runs in a window.
                if (
                    window_key is not None
                    and not origins.is_direct_navigation(request)
                    and windows.use_window(window_key, self.action)
                ):
                    return ALLOWED
                return self._decide(request, user, fp, args, kwargs, window_key)
        except MFARefusal as refusal:
            return self._refused(refusal)

    def _bind(
        self, request: Any, user: Any, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[str, windows.WindowKey | None]:
        """The request's fingerprint and, for a gate with ``window=``, the key of the
        windows it may use or open (None without a session: no window)."""
        values = None if self.values is None else self.values.canonical
        if self.window is None or self.scope is None:
            fp = fingerprint.compute(
                request, bind=self.bind, args=args, kwargs=kwargs, values=values
            )
            return fp, None
        fp, binding = fingerprint.compute_for_window(
            request, bind=self.bind, args=args, kwargs=kwargs, values=values
        )
        if not self.bind_window:
            binding = ""
        session = getattr(django_request(request), "session", None)
        session_key = getattr(session, "session_key", None)
        return fp, windows.window_key(user, session_key, self.scope, self.window, binding)

    def _refuse_inside_a_transaction(self) -> None:
        alias = atomicity.in_callers_transaction()
        if alias is not None:
            # Consumed inside the view's transaction, an approval would come back unconsumed
            # whenever the view fails: refuse rather than risk a second run.
            raise SiteMisconfigured(
                f"the gated view runs inside a transaction on database {alias!r} "
                "(ATOMIC_REQUESTS or atomic()), so one approval could run it more than "
                "once. Take the view out of ATOMIC_REQUESTS: decorate the class with "
                "@method_decorator(transaction.non_atomic_requests, name='dispatch') "
                "(a function view: @transaction.non_atomic_requests), or put "
                "@require_mfa_approval on the function view itself. Call require_approval() "
                "and gated functions outside atomic(), and open atomic() after them."
            )

    def _decide(
        self,
        request: Any,
        user: Any,
        fp: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        window_key: windows.WindowKey | None = None,
    ) -> Decision:
        try:
            mfa_request, consumed = services.settle(user, self.action, fp, self.max_age)
        except HyperIDError as err:
            # HyperID failed while asked about the pending request: it stays pending.
            return self._refused(err, services.pending_request(user, self.action, fp))
        if consumed:
            if window_key is not None and mfa_request is not None:
                windows.open_window(mfa_request, window_key)
            return ALLOWED
        if mfa_request is not None and mfa_request.is_pending:
            return Decision.pending(mfa_request)
        # None yet, or denied, expired, canceled or failed: a new push (limits apply).
        question = self._question(request, args, kwargs)
        try:
            mfa_request = services.start_request(
                user, self.action, question=question, fingerprint=fp, replace_twins=True
            )
        except HyperIDConfigurationError as err:
            raise SiteMisconfigured(str(err)) from err
        except QuestionNotShowable as err:
            if self.question_hint is None:
                raise
            raise QuestionNotShowable(str(err), hint=self.question_hint) from err
        return Decision.pending(mfa_request)

    def _refuse_missing_fields(self, request: Any) -> None:
        """A field ``bind`` names must be in the request: an approval that binds a
        missing value would run the view on whatever it does without it."""
        if self.bind is None or callable(self.bind):
            return
        fields = fingerprint.named_fields(request, self.bind)
        missing = [name for name, value in fields.items() if value is fingerprint.ABSENT]
        if missing:
            raise RequestUnreadable(
                _("The request lacks what this action needs: %(fields)s.")
                % {"fields": ", ".join(missing)}
            )

    def _question(self, request: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
        """The question of a new push: ``question=``, else worded by the adapter from
        every value the approval binds (:mod:`hyperid_mfa.gate.questions`)."""
        try:
            if self.question is None and self.window is not None and self.scope is not None:
                values = questions.window_question_values(request, self.bind, args, kwargs)
                return get_adapter().format_window_question(
                    request, self.action, values, scope=self.scope, seconds=self.window
                )
            if self.question is None and self.values is not None:
                values = questions.cleaned_question_values(request, self.values.shown)
                return get_adapter().format_question(request, self.action, values)
            if self.question is None:
                values = questions.question_values(request, self.bind, args, kwargs)
                return get_adapter().format_question(request, self.action, values)
            if callable(self.question):
                return str(self.question(request, *args, **kwargs))
            return str(self.question)
        except RequestUnreadable:
            raise
        except (LookupError, ValueError, TypeError, ArithmeticError) as err:
            logger.info("MFA gate %s: cannot word the question: %r", self.action, err)
            raise RequestUnreadable(
                _("The request is missing information needed to ask for approval.")
            ) from err

    def _refused(self, refusal: MFARefusal, mfa_request: MFARequest | None = None) -> Decision:
        if refusal.log_level is not None:
            if refusal.retryable:
                # A service is down (HyperID, the database, the cache): name it and
                # what to check.
                said = dependencies.describe(refusal)
            else:
                # Only the site's developers can act: say what to fix.
                said = f"{refusal} {refusal.hint}" if refusal.hint else str(refusal)
            logger.log(refusal.log_level, "MFA gate %s: %s", self.action, said)
        return Decision.refused(refusal, mfa_request)


def _unasked(request: Any) -> str | None:
    """Why the user did not ask for ``request`` on this site's pages (for the audit
    line), or None where they did (:mod:`hyperid_mfa.gate.origins`)."""
    if origins.is_cross_site(request):
        return "cross-site request"
    if origins.is_speculative(request):
        return "prefetch"
    return None


def check_window_options(window: Any, scope: Any) -> None:
    """Refuse a wrong ``window=`` or ``scope=`` where the gate is declared."""
    if window is None:
        if scope is not None:
            raise TypeError("scope= names the scope of a window: give window= as well")
        return
    if isinstance(window, bool) or not isinstance(window, int):
        raise TypeError(f"window= takes whole seconds (an int), not {window!r}")
    if not 0 < window <= MAX_WINDOW:
        raise ValueError(f"window= must be 1 to {MAX_WINDOW} seconds (4 hours), not {window}")
    if scope is None:
        return
    if not isinstance(scope, str):
        raise TypeError(f"scope= takes a string, not {scope!r}")
    max_length = ApprovalWindow._meta.get_field("scope").max_length or 200
    if not scope.strip() or len(scope) > max_length:
        raise ValueError(f"scope= must be a non-empty string of at most {max_length} characters")
