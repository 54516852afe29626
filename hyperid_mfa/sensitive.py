"""``Secret``: a token or key carried through the app without ever being shown.

An access or refresh token held in a plain ``str`` shows wherever Python shows
values: Django's HTML error report and Sentry print every frame's local variables,
loggers print arguments, debuggers print ``repr``. Wrapped in :class:`Secret`, the
value prints as ``Secret('********')`` in all of them; code that must send it (the
HTTP client, at the last moment) calls :meth:`Secret.reveal`.

A sign-in cannot wrap what its library holds: :func:`protect_sign_in` and
:class:`SignInExceptionReporterFilter` keep every variable of a sign-in's frames out
of Django's error reports instead.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

from django.views.debug import SafeExceptionReporterFilter, get_exception_reporter_filter

REDACTED = "********"


class Secret:
    """A string that is redacted in ``repr``, ``str``, formatting and pickling."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """The value itself: call it only where the value leaves for its destination."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, format_spec: str) -> str:
        return format(REDACTED, format_spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled: it would leave the process in clear")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


def reveal(value: str | Secret) -> str:
    """The clear value of a ``Secret``, or ``value`` itself when it is a plain ``str``."""
    return value.reveal() if isinstance(value, Secret) else value


# --- error reports of a sign-in ---------------------------------------------------------
#
# A sign-in holds the access, refresh and ID tokens in clear in the sign-in library's
# frames (mozilla-django-oidc's authenticate(), allauth's callback view), which the
# app cannot change. Django's error report prints every frame's variables: with DEBUG
# on always, with DEBUG off those that sensitive_variables does not name. So for a
# sign-in request the report hides every variable of every frame, with DEBUG on too.

#: The attribute that marks a request as a sign-in (set by :func:`protect_sign_in`).
SIGN_IN_MARK = "_hyperid_mfa_sign_in"

#: The URL names of the sign-in callbacks of allauth's OpenID Connect provider and of
#: mozilla-django-oidc (which ``OIDC_AUTHENTICATION_CALLBACK_URL`` may rename).
SIGN_IN_CALLBACKS = frozenset({"openid_connect_callback", "oidc_authentication_callback"})


def is_sign_in(request: Any) -> bool:
    """Whether ``request`` is a sign-in: marked by the app's sign-in code, or routed
    to a sign-in library's callback."""
    if request is None:
        return False
    if getattr(request, SIGN_IN_MARK, False):
        return True
    match = getattr(request, "resolver_match", None)
    if match is None:
        return False
    from django.conf import settings

    renamed = getattr(settings, "OIDC_AUTHENTICATION_CALLBACK_URL", None)
    return match.url_name in SIGN_IN_CALLBACKS or (
        renamed is not None and match.url_name == renamed
    )


class SignInExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's ``SafeExceptionReporterFilter``, hiding every local variable of every
    frame in the error report of a sign-in, with ``DEBUG`` on or off.

    Name it in ``DEFAULT_EXCEPTION_REPORTER_FILTER`` (or subclass it there): the
    allauth sign-in then never shows a token in an error report, from its first frame
    on (system check ``hyperid_mfa.W029``). Other requests are reported as
    ``SafeExceptionReporterFilter`` reports them.
    """

    def is_active(self, request: Any) -> bool:
        return is_sign_in(request) or super().is_active(request)

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        if is_sign_in(request):
            return [(name, self.cleansed_substitute) for name in tb_frame.f_locals]
        return super().get_traceback_frame_variables(request, tb_frame)


#: The project's filter class -> that class with the sign-in's hiding on top.
_SIGN_IN_FILTERS: dict[type, type[SignInExceptionReporterFilter]] = {}


def _sign_in_filter_class(project_filter: type) -> type[SignInExceptionReporterFilter]:
    """The project's filter class with the sign-in's hiding on top, keeping what the
    project's class hides besides (settings, POST parameters)."""
    if issubclass(project_filter, SignInExceptionReporterFilter):
        return project_filter
    if not issubclass(project_filter, SafeExceptionReporterFilter):
        return SignInExceptionReporterFilter
    if project_filter not in _SIGN_IN_FILTERS:
        name = f"SignIn{project_filter.__name__}"
        _SIGN_IN_FILTERS[project_filter] = type(
            name, (SignInExceptionReporterFilter, project_filter), {}
        )
    return _SIGN_IN_FILTERS[project_filter]


def protect_sign_in(request: Any) -> None:
    """Keep the tokens of the sign-in that ``request`` is out of its error reports:
    every frame's variables hidden from here on, with ``DEBUG`` on too.

    Sets the request's own ``exception_reporter_filter`` (Django's per-request hook),
    so it needs no setting; frames that run before the call are covered only by
    ``DEFAULT_EXCEPTION_REPORTER_FILTER = "hyperid_mfa.sensitive.SignInExceptionReporterFilter"``.
    """
    setattr(request, SIGN_IN_MARK, True)
    current = get_exception_reporter_filter(request)
    request.exception_reporter_filter = _sign_in_filter_class(type(current))()
