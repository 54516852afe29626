"""Gate class-based views: ``MFAApprovalRequiredMixin`` and the view options it shares
with the DRF permission ``hyperid_mfa.permissions.MFAApproved``.

::

    class WithdrawView(LoginRequiredMixin, MFAApprovalRequiredMixin, FormView):
        mfa_action = "payments.withdraw"
        mfa_bind = ("amount", "iban")

        def get_mfa_question(self, request):
            return f"Withdraw {request.POST['amount']} EUR?"

Options (class attributes, all optional):

- ``mfa_action``: what is approved; default ``"<module>.<ClassName>"``.
- ``mfa_question``: the text on the phone; or define ``get_mfa_question(request)``.
- ``mfa_bind``: field names the approval covers (default: the whole request); or
  define ``get_mfa_bind_values(request)`` returning the values to bind.
- ``mfa_max_age``: seconds an approval stays usable (default ``APPROVAL_MAX_AGE``).
- ``mfa_methods``: the methods gated; default the unsafe ones (POST, PUT, PATCH, DELETE).
- ``mfa_window``, ``mfa_scope``: an approval opens a window of ``mfa_window`` seconds
  in which the gated actions of ``mfa_scope`` (default: the action) run without a
  new push (``require_mfa_approval``'s ``window=`` and ``scope=``).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

from .gate import atomicity, rendering
from .gate.decide import Gate, check_window_options

DEFAULT_GATED_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def gate_for_view(view: Any, request: Any) -> Gate:
    """The Gate a class-based view (or DRF view) asks for, from its ``mfa_*`` options."""
    cls = type(view)
    action = getattr(view, "mfa_action", None)
    if not action:
        action = f"{cls.__module__}.{cls.__name__}"
        drf_action = getattr(view, "action", None)
        if isinstance(drf_action, str) and drf_action:
            action = f"{action}.{drf_action}"
    question: Any = getattr(view, "mfa_question", None)
    if callable(getattr(view, "get_mfa_question", None)):
        question = lambda request, *args, **kwargs: view.get_mfa_question(request)  # noqa: E731
    bind: Any = getattr(view, "mfa_bind", None)
    if callable(getattr(view, "get_mfa_bind_values", None)):
        bind = lambda request, *args, **kwargs: view.get_mfa_bind_values(request)  # noqa: E731
    return Gate(
        action,
        question=question,
        bind=bind,
        max_age=getattr(view, "mfa_max_age", None),
        methods=getattr(view, "mfa_methods", DEFAULT_GATED_METHODS),
        window=getattr(view, "mfa_window", None),
        scope=getattr(view, "mfa_scope", None),
    )


def is_gated_method(view: Any, request: Any) -> bool:
    methods = getattr(view, "mfa_methods", DEFAULT_GATED_METHODS)
    return str(request.method).upper() in {m.upper() for m in methods}


class MFAApprovalRequiredMixin:
    """Runs the view's gated methods only with a fresh, unused approval (see module doc)."""

    mfa_action: str | None = None
    mfa_question: str | None = None
    mfa_bind: Any = None
    mfa_max_age: float | None = None
    mfa_methods: tuple[str, ...] = DEFAULT_GATED_METHODS
    mfa_window: int | None = None
    mfa_scope: str | None = None
    #: Tells the system check E009 that views of this class run the gate.
    mfa_gated = True

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # Refused where the URLconf is loaded, rather than at the first request.
        check_window_options(
            initkwargs.get("mfa_window", cls.mfa_window), initkwargs.get("mfa_scope", cls.mfa_scope)
        )
        view = super().as_view(**initkwargs)  # type: ignore[misc]
        # Django refuses ATOMIC_REQUESTS on async views; leave that refusal alone.
        if not getattr(cls, "view_is_async", False):
            # The gate must commit before the view's transaction opens: dispatch()
            # opens it, after the gate (see hyperid_mfa.gate.atomicity).
            atomicity.exclude_from_atomic_requests(view, owner=cls)
        return view

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        parent = super().dispatch  # type: ignore[misc]
        if getattr(self, "view_is_async", False):
            return self._async_dispatch(parent, request, args, kwargs)
        if is_gated_method(self, request):
            decision = gate_for_view(self, request).check(request, args, kwargs)
            if not decision.allowed:
                return rendering.respond(request, decision)
        with atomicity.as_atomic_requests(request, owner=type(self)):
            return parent(request, *args, **kwargs)

    def _async_dispatch(self, parent: Any, request: Any, args: Any, kwargs: Any) -> Any:
        if not is_gated_method(self, request):
            return parent(request, *args, **kwargs)
        gate = gate_for_view(self, request)

        async def gated() -> Any:
            decision = await sync_to_async(gate.check)(request, args, kwargs)
            if not decision.allowed:
                return await sync_to_async(rendering.respond)(request, decision)
            return await parent(request, *args, **kwargs)

        return gated()
