"""Single use under transactions: the gate never works inside the view's transaction.

What the gate records (a push sent, an approval learnt, an approval consumed) must be
committed before the view runs and stay committed whatever the view's transaction
does: with ``ATOMIC_REQUESTS``, a view that raised after calling a payment API would
otherwise roll its approval back to unconsumed, and the next attempt would run it again.

So:

- ``require_mfa_approval`` on a function view and ``MFAApprovalRequiredMixin`` take
  their view out of ``ATOMIC_REQUESTS`` (as ``transaction.non_atomic_requests``
  does) and open the same transactions themselves *after* the gate, around the view
  only: the view keeps the atomicity the project asked for, the gate stays outside.
- Everywhere else (a decorated method, the DRF permission, a gated function called
  inside ``atomic()``, ``require_approval``) the gate checks where it runs. Inside a transaction it
  refuses: the view does not run, the answer is ``500 mfa_misconfigured`` and the
  log says how to fix the view. The system check ``hyperid_mfa.E009`` finds such
  views in the URLconf before a request does.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable, Iterator
from types import CodeType
from typing import Any

from django.core.checks import CheckMessage, Error
from django.db import connections, router, transaction

from ..checks.settings import E009
from .fingerprint import django_request


class EveryDatabase(set[str]):
    """A ``_non_atomic_requests`` value that Django reads as "every database".

    ``owner`` is the gate's wrapper or view class that set it. Its real members are
    the aliases the project itself marked non-atomic (``transaction.non_atomic_requests``
    before or after the gate's decorator): those stay without a transaction when the
    gate opens the others.
    """

    def __init__(self, explicit: Iterable[str] = (), *, owner: object = None) -> None:
        super().__init__(explicit)
        self.owner = owner

    def __contains__(self, alias: object) -> bool:
        return True


def exclude_from_atomic_requests(view: Any, *, owner: object) -> None:
    """Mark a URL callback so that Django does not wrap it in ``ATOMIC_REQUESTS``."""
    view._non_atomic_requests = EveryDatabase(
        getattr(view, "_non_atomic_requests", ()), owner=owner
    )


def atomic_request_aliases() -> list[str]:
    """The database aliases configured with ``ATOMIC_REQUESTS``, in Django's order."""
    return [alias for alias, conf in connections.settings.items() if conf.get("ATOMIC_REQUESTS")]


def _mark_of(request: Any, owner: object) -> EveryDatabase | None:
    """The mark ``owner`` left on the URL callback that routed ``request``, if any:
    only then was it the gate that took the view out of ``ATOMIC_REQUESTS``."""
    match = getattr(django_request(request), "resolver_match", None)
    mark = getattr(getattr(match, "func", None), "_non_atomic_requests", None)
    if isinstance(mark, EveryDatabase) and mark.owner is owner:
        return mark
    return None


@contextlib.contextmanager
def as_atomic_requests(request: Any, *, owner: object) -> Iterator[None]:
    """Around the view, the transactions ``ATOMIC_REQUESTS`` would have opened, where
    ``owner`` took them away (on other aliases, and elsewhere, nothing)."""
    mark = _mark_of(request, owner)
    with contextlib.ExitStack() as stack:
        if mark is not None:
            explicit = set(iter(mark))
            # Django wraps alias by alias, the last outermost; the order does not
            # change what commits.
            for alias in reversed(atomic_request_aliases()):
                if alias not in explicit:
                    stack.enter_context(transaction.atomic(using=alias))
        yield


def gate_aliases() -> set[str]:
    """The databases the gate writes to."""
    from ..models import ApprovalWindow, HyperIDToken, MFARequest

    return {router.db_for_write(model) for model in (MFARequest, HyperIDToken, ApprovalWindow)}


def in_callers_transaction() -> str | None:
    """The alias of a gate database on which a transaction is open, or None.

    The transactions a test case opens around each test (Django's ``TestCase``,
    pytest-django's ``django_db``) do not count: they stand for the autocommit a
    real request has, and they are never committed anyway.
    """
    for alias in sorted(gate_aliases()):
        connection = connections[alias]
        if connection.in_atomic_block:
            blocks = connection.atomic_blocks
            if any(not getattr(block, "_from_testcase", False) for block in blocks):
                return alias
        elif connection.connection is not None and not connection.autocommit:
            return alias  # set_autocommit(False) by hand
    return None


# --- the system check: gated views left inside ATOMIC_REQUESTS (E009) ---------------------


def url_callbacks(patterns: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    from django.urls import URLPattern, URLResolver

    for entry in patterns:
        if isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback
        elif isinstance(entry, URLResolver):
            yield from url_callbacks(entry.url_patterns, prefix + str(entry.pattern))


def project_views() -> Iterator[tuple[str, Any, type | None]]:
    """Each view of the project's URLconf: its route, its URL callback and, for a
    class-based view (Django's or DRF's), its class. None at all where the URLconf
    itself is broken: Django's urls checks report that."""
    from django.urls import get_resolver

    try:
        patterns = get_resolver().url_patterns
    except Exception:
        return
    for route, callback in url_callbacks(patterns):
        view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        yield route, callback, view_class if isinstance(view_class, type) else None


def view_name(callback: Any, view_class: type | None) -> str:
    """The dotted name of a view class, or the function's name: for check messages."""
    if view_class is not None:
        return f"{view_class.__module__}.{view_class.__qualname__}"
    return getattr(callback, "__qualname__", repr(callback))


def permission_gates(item: Any) -> bool:
    """Whether a DRF permission (a class, or ``A & B`` style operands) includes the
    gate's: the gate's classes say so with ``mfa_gated``."""
    if isinstance(item, type):
        return bool(getattr(item, "mfa_gated", False))
    return any(
        permission_gates(getattr(item, name))
        for name in ("op1_class", "op2_class")
        if hasattr(item, name)
    )


def gated_by_permission(view_class: type) -> bool:
    """Whether a DRF view's permissions include ``MFAApproved``."""
    return any(map(permission_gates, getattr(view_class, "permission_classes", ())))


def is_gated(callback: Any, view_class: type | None) -> bool:
    """Whether a URL callback runs the gate: a decorated function, a class with the
    mixin, the DRF permission, or a decorated method. (A view that calls
    ``require_approval``: :func:`names_require_approval`.)"""
    if getattr(callback, "mfa_gate", None) is not None:
        return True
    if view_class is None:
        return False
    if getattr(view_class, "mfa_gated", False) or gated_by_permission(view_class):
        return True
    return any(
        getattr(member, "mfa_gate", None) is not None
        for klass in view_class.__mro__
        for member in vars(klass).values()
        if callable(member)
    )


#: Where the code of a view can be read from: Django's and DRF's own views call no gate.
_FRAMEWORKS = ("django.", "rest_framework.")


def names_require_approval(callback: Any, view_class: type | None) -> bool:
    """Whether a view's own code names ``require_approval``: a function view (under
    its decorators), or the methods a class-based view's own classes define, lambdas
    and nested functions included. It reads names, so ``require_approval(...)``,
    ``hyperid_mfa.require_approval(...)`` and ``sync_to_async(require_approval)`` all
    count; a helper the view calls that calls it does not."""
    if view_class is None:
        functions = [callback]
    else:
        functions = [
            getattr(member, "__func__", member)
            for klass in view_class.__mro__
            if not klass.__module__.startswith(_FRAMEWORKS)
            for member in vars(klass).values()
        ]
    for function in functions:
        try:
            code = getattr(inspect.unwrap(function), "__code__", None)
        except ValueError:  # a __wrapped__ cycle
            continue
        if isinstance(code, CodeType) and "require_approval" in _code_names(code):
            return True
    return False


def _code_names(code: CodeType) -> set[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            names |= _code_names(constant)
    return names


def check_atomic_requests(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E009: a gated view that Django would run inside ``ATOMIC_REQUESTS``.

    Its approval would be consumed inside the view's transaction and come back unconsumed
    when the view fails; the gate refuses such requests (500 ``mfa_misconfigured``).
    """
    from asgiref.sync import iscoroutinefunction

    aliases = atomic_request_aliases()
    if not aliases:
        return []
    messages: list[CheckMessage] = []
    for route, callback, view_class in project_views():
        # Django itself refuses ATOMIC_REQUESTS on async views.
        if iscoroutinefunction(callback):
            continue
        inline = names_require_approval(callback, view_class)
        if not inline and not is_gated(callback, view_class):
            continue
        excluded = getattr(callback, "_non_atomic_requests", ())
        atomic_on = [alias for alias in aliases if alias not in excluded]
        if not atomic_on:
            continue
        name = view_name(callback, view_class)
        messages.append(
            Error(
                f"The gated view {name} (URL {route!r}) runs inside ATOMIC_REQUESTS on "
                f"{', '.join(map(repr, atomic_on))}: an approval consumed inside the view's "
                "transaction would come back unconsumed when the view fails, so the gate "
                "refuses every request to it.",
                hint=INLINE_HINT if inline else GATE_HINT,
                id=E009,
            )
        )
    return messages


GATE_HINT = (
    "Decorate the view class with @method_decorator(transaction.non_atomic_requests, "
    "name='dispatch') and open transaction.atomic() inside the handler where you need "
    "one, or use MFAApprovalRequiredMixin or @require_mfa_approval on a function view, "
    "which do this themselves."
)
INLINE_HINT = (
    "The view calls require_approval(): decorate it with @transaction.non_atomic_requests "
    "(a class: @method_decorator(transaction.non_atomic_requests, name='dispatch')), "
    "call require_approval() outside any atomic(), and open transaction.atomic() after "
    "it, around what the view does."
)
