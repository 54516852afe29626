"""System checks of the project around the app: its URLconf, templates, cache,
``INSTALLED_APPS`` and ``MIDDLEWARE``, and the window options of views gated by the
DRF permission. The
setting's own rules are in ``checks``; gated views inside ``ATOMIC_REQUESTS`` in
``atomicity``.

Each check does what the first request would (reverse the page's URLs, load its
templates, look at the cache the push limit counts in) and reports, with an id and a
hint, the mistake that would otherwise show only then, as a 500 or as an approval
page that never continues.

A project whose URLconf or template engines are themselves broken is left to
Django's own checks (``urls``, ``templates``): these checks then say nothing rather
than fail ``manage.py check`` with a second error, or a confusing one.

Registered from ``HyperIDMFAConfig.ready()``; the ids are listed in ``checks``.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import uuid
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import CheckMessage, Error, Warning
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import get_template
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from ..constants import PRODUCTION_API_BASE_URL, PRODUCTION_ISSUER
from .settings import (
    E015,
    E016,
    E018,
    E023,
    E028,
    SETTING_NAME,
    W017,
    W021,
    W031,
    usable_values,
)
from .system import local_or_plain_http

#: The URLs the approval page's script calls (rendering.approval_page).
PAGE_URLS = ("hyperid_mfa:request-detail", "hyperid_mfa:request-cancel")


def check_urls(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E015: the app's URLs are not in the project's URLconf."""
    if not getattr(settings, "ROOT_URLCONF", None):
        return []  # no URLs at all: no page to show either
    missing = []
    for name in PAGE_URLS:
        try:
            reverse(name, args=[uuid.UUID(int=0)])
        except NoReverseMatch:
            missing.append(name)
        except Exception:
            # The URLconf itself is broken: Django's urls checks report it.
            return []
    if not missing:
        return []
    return [
        Error(
            f"The app's URLs are not in the URLconf ({', '.join(missing)} cannot be "
            "reversed): the approval page calls them, so it would never learn of an "
            "approval nor continue, and the gate's JSON answers would carry no status_url.",
            hint="Add path('mfa/', include('hyperid_mfa.urls')) to your ROOT_URLCONF "
            "(any prefix will do; keep the namespace 'hyperid_mfa').",
            id=E015,
        )
    ]


def check_permission_windows(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E023: a DRF view gated by ``MFAApproved`` whose ``mfa_window`` or ``mfa_scope``
    the gate refuses. The decorator refuses them where it is applied, the mixin where
    the URLconf is loaded; the permission meets its view only at a request, which
    answers 500."""
    # Here, not at the top: ready() imports this module, and the gate brings the models.
    from ..gate.atomicity import gated_by_permission, project_views, view_name
    from ..gate.decide import MAX_WINDOW, check_window_options

    messages: list[CheckMessage] = []
    seen: set[tuple[type, str]] = set()
    for route, callback, view_class in project_views():
        if view_class is None or not gated_by_permission(view_class):
            continue
        # as_view(mfa_window=...) arguments, where the view was given any, come first.
        given = getattr(callback, "initkwargs", None) or {}
        window = given.get("mfa_window", getattr(view_class, "mfa_window", None))
        scope = given.get("mfa_scope", getattr(view_class, "mfa_scope", None))
        try:
            check_window_options(window, scope)
        except (TypeError, ValueError) as err:
            if (view_class, str(err)) in seen:
                continue  # one message for a view under several URLs
            seen.add((view_class, str(err)))
            messages.append(
                Error(
                    f"The view {view_name(callback, view_class)} (URL {route!r}) is gated "
                    f"by MFAApproved with mfa_window={window!r}, mfa_scope={scope!r}, "
                    f"which the gate refuses: {err}. Every gated request to it would "
                    "be a server error.",
                    hint=f"Give mfa_window whole seconds (1 to {MAX_WINDOW}), and "
                    "mfa_scope, if any, a name; leave both unset for an approval per "
                    "request.",
                    id=E023,
                )
            )
    return messages


def check_templates(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E016: the approval page's template, or the BASE_TEMPLATE it extends, cannot be
    loaded (the page would be a 500)."""
    # Here, not at the top: ready() imports this module, and rendering brings the gate.
    from ..gate.rendering import PAGE_TEMPLATE

    try:
        page = get_template(PAGE_TEMPLATE)
    except (TemplateDoesNotExist, TemplateSyntaxError) as err:
        return [
            Error(
                f"The approval page's template {PAGE_TEMPLATE!r} cannot be loaded "
                f"({type(err).__name__}): every approval page would be a server error (500).",
                hint="Let Django find the templates of installed apps: 'APP_DIRS': True in "
                "the DjangoTemplates entry of TEMPLATES (or the app_directories loader). "
                "An override of the template must keep its name and load without errors.",
                id=E016,
            )
        ]
    except Exception:
        # The template engines themselves are broken: Django's templates checks say so.
        return []
    values = usable_values()
    if values is None or "BASE_TEMPLATE" not in values:
        return []  # E001/E002 report the setting
    base = values["BASE_TEMPLATE"]
    # {% extends %} looks in the page's own engine, not in every engine.
    engine = getattr(page, "backend", None)
    try:
        if engine is not None:
            engine.get_template(base)
        else:
            get_template(base)
    except TemplateDoesNotExist:
        problem = "cannot be found"
    except TemplateSyntaxError as err:
        problem = f"has a syntax error ({err})"
    except Exception:  # as above
        return []
    else:
        return []
    return [
        Error(
            f"{SETTING_NAME}['BASE_TEMPLATE'] = {base!r} {problem}: the approval page "
            "extends it, so every approval page would be a server error (500).",
            hint="Name a template your project has, with a {% block content %} for the "
            "page, or leave BASE_TEMPLATE unset to use 'hyperid_mfa/base.html'.",
            id=E016,
        )
    ]


def _rate_limited_cache() -> tuple[str, Any] | None:
    """The rate ``START_RATE_LIMIT`` sets and the cache it is counted in, or None
    when nothing is counted or either cannot be read (other checks report that)."""
    values = usable_values()
    if values is None or values.get("START_RATE_LIMIT") is None:
        return None
    if DEFAULT_CACHE_ALIAS not in getattr(settings, "CACHES", {}):
        return None  # Django's caches.E001
    try:
        cache = caches[DEFAULT_CACHE_ALIAS]
    except Exception:
        # An unusable backend fails the first cache call, with Django's own message.
        return None
    return values["START_RATE_LIMIT"], cache


def _backend(cache: Any) -> str:
    return f"{type(cache).__module__}.{type(cache).__qualname__}"


def check_rate_limit_cache(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E018: the push limit counts in a cache that keeps nothing, so the gate refuses
    every push (500 ``mfa_misconfigured``), with ``DEBUG`` on or off."""
    found = _rate_limited_cache()
    if found is None or not isinstance(found[1], DummyCache):
        return []
    rate, cache = found
    return [
        Error(
            f"{SETTING_NAME}['START_RATE_LIMIT'] is {rate!r}, but the default cache "
            f"({_backend(cache)}) keeps nothing: the push limit cannot count, so every "
            "gated view answers 500 mfa_misconfigured instead of sending a push.",
            hint="Give CACHES['default'] a cache that keeps its keys: Redis or Memcached "
            "in production, LocMemCache will do in development. Or set START_RATE_LIMIT "
            "to None to send pushes without a limit.",
            id=E018,
        )
    ]


def check_rate_limit_cache_is_shared(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W017 (``check --deploy``, outside ``DEBUG``): the push limit counts in a cache
    that each process keeps for itself, or whose ``add()`` is not atomic (the push
    limit takes its slots with ``add()``: :mod:`hyperid_mfa.services.ratelimit`)."""
    found = _rate_limited_cache()
    if settings.DEBUG or found is None or isinstance(found[1], DummyCache):
        return []
    rate, cache = found
    if isinstance(cache, LocMemCache):
        why = (
            "each process counts on its own, so with N processes a user can be sent N "
            "times as many pushes"
        )
    elif isinstance(cache, (DatabaseCache, FileBasedCache)) or type(cache).add is BaseCache.add:
        # The file cache's add() reads then writes; the database cache's is atomic for a
        # key never written, not for one that expired (it reads, then replaces it).
        why = (
            "its add() reads then writes, so concurrent requests can take the same slot "
            "and pass the limit together"
        )
    else:
        return []
    return [
        Warning(
            f"{SETTING_NAME}['START_RATE_LIMIT'] ({rate!r}) is counted in the default "
            f"cache, a {_backend(cache)}: {why}.",
            hint="Use a cache that every process shares and whose add() is atomic "
            "as CACHES['default']: django.core.cache.backends.redis.RedisCache or a "
            f"Memcached backend. If one process serves the site, add {W017!r} to "
            "SILENCED_SYSTEM_CHECKS.",
            id=W017,
        )
    ]


#: mozilla-django-oidc's settings that name HyperID's endpoints.
OIDC_ENDPOINT_SETTINGS = (
    "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "OIDC_OP_TOKEN_ENDPOINT",
    "OIDC_OP_USER_ENDPOINT",
    "OIDC_OP_JWKS_ENDPOINT",
)


def simulator_error(where: str, url: str, *, hint: str) -> list[CheckMessage]:
    """E028 for ``url``, the value of ``where``, when it is on this machine or plain
    ``http://``: none with DEBUG on, nor for an ``https://`` URL to another host."""
    why = local_or_plain_http(url)
    if settings.DEBUG or why is None:
        return []
    what = "this machine (a loopback address)" if why == "loopback" else "plain http://"
    return [
        Error(
            f"{where} is {url}, on {what}, with DEBUG off: that is where the HyperID "
            "simulator (manage.py hyperid_mfa_simulator) or a test double answers, not "
            "HyperID. These production settings would send every sign-in, push or "
            "token to it" + (", unencrypted." if why == "http" else "."),
            hint=hint,
            id=E028,
        )
    ]


def check_production_endpoints(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E028 (``check --deploy``, outside ``DEBUG``): ``API_BASE_URL``, ``ISSUER`` or
    mozilla-django-oidc's ``OIDC_OP_*`` endpoints point at the simulator.

    ``API_BASE_URL`` and ``ISSUER`` on plain ``http://`` to another host are E004's,
    in every ``check``; the simulator's loopback ``http://`` stays quiet there.
    """
    messages: list[CheckMessage] = []
    values = usable_values() or {}
    defaults = {"API_BASE_URL": PRODUCTION_API_BASE_URL, "ISSUER": PRODUCTION_ISSUER}
    for key, production in defaults.items():
        if key in values and local_or_plain_http(values[key]) == "loopback":
            messages += simulator_error(
                f"{SETTING_NAME}[{key!r}]",
                values[key],
                hint=f"Leave {key} unset in production for HyperID's own {production!r}; "
                "keep the simulator's URL in development settings, with DEBUG on.",
            )
    if _uses_hyperid_oidc_backend():
        for name in OIDC_ENDPOINT_SETTINGS:
            url = getattr(settings, name, None)
            if isinstance(url, str):
                messages += simulator_error(
                    name,
                    url,
                    hint=f"Name HyperID's endpoint below its issuer, {PRODUCTION_ISSUER!r} "
                    "(see the README's 'Sign in with HyperID').",
                )
    return messages


def _uses_hyperid_oidc_backend() -> bool:
    """Whether ``AUTHENTICATION_BACKENDS`` holds ``HyperIDOIDCBackend`` (or a subclass)."""
    if importlib.util.find_spec("mozilla_django_oidc") is None:
        return False
    from ..contrib.mozilla_oidc import HyperIDOIDCBackend

    for path in getattr(settings, "AUTHENTICATION_BACKENDS", ()):
        try:
            backend = import_string(path)
        except (ImportError, TypeError, ValueError):
            continue  # Django's own checks and the first sign-in report it
        if isinstance(backend, type) and issubclass(backend, HyperIDOIDCBackend):
            return True
    return False


def check_installed_apps(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W021: Django REST framework, which the API and the DRF gate are built on, is
    not an installed app."""
    if apps.is_installed("rest_framework"):
        return []
    return [
        Warning(
            "'rest_framework' is not in INSTALLED_APPS: the app's API and its DRF gate "
            "are built on Django REST framework, whose templates, static files and "
            "system checks then go missing (a gated DRF view opened in a browser, with "
            "the browsable API, is a server error).",
            hint="Add 'rest_framework' to INSTALLED_APPS.",
            id=W021,
        )
    ]


def check_approval_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W031: plain Django views use ``require_approval`` and ``MFAApprovalMiddleware``,
    which answers it in them, is not in ``MIDDLEWARE``.

    What can be known before a request: a view of the URLconf that is not DRF's and
    whose own code names ``require_approval``, or that lives in a module that imported
    it by name (a view may call it through a helper of its module). DRF views answer
    it themselves.
    """
    # Here, not at the top: ready() imports this module, and these bring the gate.
    from ..gate.approval import require_approval
    from ..gate.atomicity import names_require_approval, project_views, view_name
    from ..middleware import PATH, MFAApprovalMiddleware

    if _in_middleware(MFAApprovalMiddleware):
        return []
    views = [  # the URLconf first: loading it imports the views' modules
        (route, callback, view_class)
        for route, callback, view_class in project_views()
        if view_class is None or not _is_drf_view(view_class)
    ]
    importers = _modules_holding(require_approval)
    users = [
        f"{view_name(callback, view_class)} (URL {route!r})"
        for route, callback, view_class in views
        if names_require_approval(callback, view_class)
        or _module_of(callback, view_class) in importers
    ]
    if not users:
        return []
    more = f" and {len(users) - 3} more" if len(users) > 3 else ""
    return [
        Warning(
            f"Views call require_approval() ({', '.join(users[:3])}{more}), but "
            "MFAApprovalMiddleware is not in MIDDLEWARE: nothing answers the approval "
            "they ask for, so each of them answers 500 (with an ERROR line) instead of "
            "showing the approval page.",
            hint=f"Add {PATH!r} to MIDDLEWARE (anywhere; at its end is usual). Views "
            f"of Django REST framework need nothing: if only they call require_approval(), "
            f"add {W031!r} to SILENCED_SYSTEM_CHECKS.",
            id=W031,
        )
    ]


def _in_middleware(middleware: type) -> bool:
    for path in getattr(settings, "MIDDLEWARE", None) or ():
        try:
            found = import_string(path)
        except Exception:  # noqa: S112 - Django reports it when it loads the middleware
            continue
        if isinstance(found, type) and issubclass(found, middleware):
            return True
    return False


def _is_drf_view(view_class: type) -> bool:
    from rest_framework.views import APIView

    return issubclass(view_class, APIView)


def _modules_holding(function: Any) -> set[str]:
    """The loaded modules, outside the app, that hold ``function`` by a name of their own."""
    found = set()
    for name, module in list(sys.modules.items()):
        if name == "hyperid_mfa" or name.startswith("hyperid_mfa."):
            continue
        namespace = getattr(module, "__dict__", None)
        if isinstance(namespace, dict) and any(v is function for v in list(namespace.values())):
            found.add(name)
    return found


def _module_of(callback: Any, view_class: type | None) -> str | None:
    if view_class is not None:
        return view_class.__module__
    try:
        return getattr(inspect.unwrap(callback), "__module__", None)
    except ValueError:  # a __wrapped__ cycle
        return None
