"""``@require_mfa_approval``: a view runs only after the user approved it on their phone.

::

    from hyperid_mfa.decorators import require_mfa_approval


    @require_mfa_approval(
        "payments.withdraw",
        question=lambda request, *a, **kw: f"Withdraw {request.POST['amount']} EUR?",
        bind=("amount", "iban"),
    )
    def withdraw(request): ...

Works with and without arguments (``@require_mfa_approval`` names the action after the
view), on function views, on methods of class-based views (directly or through
``method_decorator``), on DRF ``APIView`` methods, ``@api_view`` functions and
``@action`` methods, and on async views, which stay async.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest

from .gate import atomicity, rendering
from .gate.decide import Gate
from .gate.fingerprint import Binder, django_request

View = TypeVar("View", bound=Callable[..., Any])


def _split(args: tuple[Any, ...]) -> tuple[Any, Any, tuple[Any, ...]]:
    """(self or None, request, the view's other positional arguments)."""
    if args and _is_request(args[0]):
        return None, args[0], args[1:]
    if len(args) >= 2 and _is_request(args[1]):
        return args[0], args[1], args[2:]
    raise TypeError("require_mfa_approval: the decorated view received no request")


def _is_request(value: Any) -> bool:
    return isinstance(django_request(value), HttpRequest)


def _decorate(view: View, gate: Gate) -> View:
    if iscoroutinefunction(view):

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            _self, request, view_args = _split(args)
            if gate.gates(request):
                decision = await sync_to_async(gate.check)(request, view_args, kwargs)
                if not decision.allowed:
                    return await sync_to_async(rendering.respond)(request, decision)
            return await view(*args, **kwargs)

        wrapper: Any = functools.wraps(view)(async_wrapper)
        markcoroutinefunction(wrapper)
    else:

        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            _self, request, view_args = _split(args)
            if gate.gates(request):
                decision = gate.check(request, view_args, kwargs)
                if not decision.allowed:
                    return rendering.respond(request, decision)
            # Where this wrapper took the view out of ATOMIC_REQUESTS, the gate's
            # work is committed by now: the view gets its transactions back.
            with atomicity.as_atomic_requests(request, owner=wrapper):
                return view(*args, **kwargs)

        wrapper = functools.wraps(view)(sync_wrapper)
        atomicity.exclude_from_atomic_requests(wrapper, owner=wrapper)
    wrapper.mfa_gate = gate
    return wrapper


def _default_action(view: Callable[..., Any]) -> str:
    return f"{view.__module__}.{view.__qualname__}"


@overload
def require_mfa_approval(action: View) -> View: ...


@overload
def require_mfa_approval(
    action: str | None = None,
    *,
    question: str | Callable[..., str] | None = None,
    bind: Binder = None,
    max_age: float | None = None,
    methods: Iterable[str] | None = None,
    window: int | None = None,
    scope: str | None = None,
) -> Callable[[View], View]: ...


def require_mfa_approval(
    action: Any = None,
    *,
    question: str | Callable[..., str] | None = None,
    bind: Binder = None,
    max_age: float | None = None,
    methods: Iterable[str] | None = None,
    window: int | None = None,
    scope: str | None = None,
) -> Any:
    """Let the view run only with a fresh, unused approval of this very request.

    ``action`` names what is approved (default: the view's dotted name). ``question``
    is the text on the phone, or a callable ``(request, *args, **kwargs) -> str``.
    ``bind`` chooses what the approval covers: by default the method, path, query and
    submitted data; a sequence of field names, or a callable returning the values
    to bind, narrows it. ``max_age`` is how many seconds an approval stays usable
    (default ``APPROVAL_MAX_AGE``). ``methods`` names the methods gated (for a view
    that shows its form on GET and acts on POST: ``methods=("POST",)``); the others
    run the view ungated. By default every method is gated.

    ``window`` (whole seconds, at most 4 hours) makes an approval open a window:
    for that long, in that browser session, the gated actions of ``scope`` (default:
    this action) run without a new push; an explicit ``bind`` still has to match
    the values that opened the window (see docs/gate.md, "Windows").
    """
    if callable(action):
        return _decorate(action, Gate(_default_action(action)))

    def decorator(view: View) -> View:
        name = action if action is not None else _default_action(view)
        gate = Gate(
            name,
            question=question,
            bind=bind,
            max_age=max_age,
            methods=methods,
            window=window,
            scope=scope,
        )
        return _decorate(view, gate)

    return decorator
