"""System checks of the project around the app: URLconf, templates, cache, INSTALLED_APPS,
MIDDLEWARE.

Each check is made to fire and to stay quiet, and where it can be, shown to fire
exactly when the first request would fail.
"""

from __future__ import annotations

import copy
import io
import re
import sys
import textwrap
import types
import uuid

import pytest
from django.core.cache import caches as django_caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.checks import Tags, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.template import TemplateDoesNotExist
from django.template.loader import get_template, render_to_string
from django.test import modify_settings, override_settings
from django.urls import include, path

from hyperid_mfa.checks import deployment as deployment_checks
from hyperid_mfa.checks.deployment import (
    check_approval_middleware,
    check_installed_apps,
    check_permission_windows,
    check_production_endpoints,
    check_rate_limit_cache,
    check_rate_limit_cache_is_shared,
    check_templates,
    check_urls,
)
from hyperid_mfa.checks.settings import E002, E008, E015, E016, E018, E023, E028, W017, W021, W031
from hyperid_mfa.gate.rendering import PAGE_TEMPLATE
from tests import approval_views

OURS = (E015, E016, W017, E018, W021, E023, E028, W031)


def ids(messages):
    return [message.id for message in messages]


def test_the_test_project_passes_every_check_of_the_app():
    assert [m for m in run_checks() if m.id.startswith("hyperid_mfa.")] == []


# --- E015: the app's URLs ----------------------------------------------------------------


@pytest.fixture
def urlconf(monkeypatch, settings):
    """Make a URLconf module of these patterns and use it as ROOT_URLCONF.

    Through pytest-django's ``settings``, so that it is undone in its turn with the
    test's other setting changes (an override_settings of its own, undone after them,
    would put back the settings they changed).
    """

    def make(*patterns):
        name = f"tests._urlconf_{uuid.uuid4().hex}"
        module = types.ModuleType(name)
        module.urlpatterns = list(patterns)
        monkeypatch.setitem(sys.modules, name, module)
        settings.ROOT_URLCONF = name
        return name

    return make


def test_the_app_urls_included_are_quiet():
    assert check_urls() == []


def test_a_urlconf_without_the_app_urls_is_e015(urlconf):
    urlconf(path("gate/", include("tests.gate_views")))
    [error] = check_urls()
    assert error.id == E015
    assert "hyperid_mfa:request-detail" in error.msg
    assert "include('hyperid_mfa.urls')" in error.hint
    assert E015 in ids(run_checks(tags=[Tags.urls]))


def test_the_app_urls_under_another_instance_namespace_are_quiet(urlconf):
    urlconf(path("two-factor/", include("hyperid_mfa.urls", namespace="second-factor")))
    assert check_urls() == []


def test_a_broken_urlconf_is_left_to_djangos_own_url_checks(monkeypatch):
    # An import error: Django's check_url_config raises it, this check must not crash.
    with override_settings(ROOT_URLCONF="tests.no_such_urlconf_module"):
        assert check_urls() == []
    # A module without urlpatterns: Django's ImproperlyConfigured, not a NoReverseMatch.
    monkeypatch.setitem(sys.modules, "tests._empty_urlconf", types.ModuleType("empty"))
    with override_settings(ROOT_URLCONF="tests._empty_urlconf"):
        assert check_urls() == []


def test_no_urlconf_at_all_is_quiet():
    with override_settings(ROOT_URLCONF=None):
        assert check_urls() == []


# --- E016: the approval page's templates -------------------------------------------------


def page_renders(base: str) -> bool:
    """Whether the approval page's template renders on top of ``base``."""
    answer = types.SimpleNamespace(code="mfa_unavailable", detail="")
    try:
        render_to_string(PAGE_TEMPLATE, {"base_template": base, "answer": answer, "config": {}})
    except TemplateDoesNotExist:
        return False
    return True


def test_the_default_base_template_is_quiet():
    assert check_templates() == []


def test_a_base_template_that_does_not_exist_is_e016_as_the_page_would_fail(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "BASE_TEMPLATE": "site/nowhere.html"}
    [error] = check_templates()
    assert error.id == E016
    assert "'site/nowhere.html'" in error.msg
    assert "BASE_TEMPLATE" in error.hint
    assert not page_renders("site/nowhere.html")
    assert E016 in ids(run_checks(tags=[Tags.templates]))


@pytest.fixture
def template_dir(settings, tmp_path):
    """A DIRS entry in the project's DjangoTemplates engine (app templates still found).

    Set through ``settings``, as the tests set HYPERID_MFA: overrides must be undone in
    the reverse order, or one would restore the settings another had changed.
    """
    (tmp_path / "site").mkdir()
    [engine] = settings.TEMPLATES
    settings.TEMPLATES = [{**engine, "DIRS": [tmp_path]}]
    return tmp_path


def test_a_base_template_of_the_project_is_quiet(settings, template_dir):
    (template_dir / "site" / "base.html").write_text("<main>{% block content %}{% endblock %}")
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "BASE_TEMPLATE": "site/base.html"}
    assert check_templates() == []
    assert page_renders("site/base.html")


def test_a_base_template_with_a_syntax_error_is_e016(settings, template_dir):
    (template_dir / "site" / "base.html").write_text("{% block content %}")
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "BASE_TEMPLATE": "site/base.html"}
    [error] = check_templates()
    assert error.id == E016
    assert "syntax error" in error.msg


def test_a_base_template_only_another_engine_finds_is_e016(settings, tmp_path):
    """{% extends %} looks in the page's engine only."""
    (tmp_path / "base.html").write_text("{% block content %}{% endblock %}")
    engines = [
        {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True},
        {
            "NAME": "other",
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [tmp_path],
        },
    ]
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "BASE_TEMPLATE": "base.html"}
    with override_settings(TEMPLATES=engines):
        get_template("base.html")  # found, by the other engine
        assert ids(check_templates()) == [E016]
        assert not page_renders("base.html")


def test_app_templates_that_cannot_be_found_are_e016():
    engines = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": False}]
    with override_settings(TEMPLATES=engines):
        [error] = check_templates()
    assert error.id == E016
    assert PAGE_TEMPLATE in error.msg
    assert "APP_DIRS" in error.hint


def test_a_wrong_base_template_value_is_only_e002(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "BASE_TEMPLATE": 5}
    assert check_templates() == []
    assert E002 in ids(run_checks())


def test_broken_template_engines_are_left_to_django():
    with override_settings(TEMPLATES=[{"BACKEND": "nowhere.Engine"}]):
        assert check_templates() == []


# --- E018 and W017: the cache the push limit counts in -----------------------------------

DUMMY = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DATABASE = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "cache_table",
    }
}
REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/15",
    }
}


class ThirdPartyCache(BaseCache):
    """Built as Django builds every backend, from a location and the params."""

    def __init__(self, location, params):
        super().__init__(params)


class SlotCache(ThirdPartyCache):
    """A third-party backend with an add() of its own, as Memcached's and Redis's are."""

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        raise NotImplementedError


class GenericCache(ThirdPartyCache):
    """A third-party backend that leaves add() to Django's read-then-write default."""

    def get(self, key, default=None, version=None):
        raise NotImplementedError


SLOTS = {"default": {"BACKEND": f"{__name__}.SlotCache"}}
GENERIC = {"default": {"BACKEND": f"{__name__}.GenericCache"}}


def cache_ids(caches, *, debug=False, **changes):
    """The ids of both cache checks, with no cache call made (none needs a server)."""
    from django.conf import settings

    config = {**settings.HYPERID_MFA, **changes}
    with override_settings(CACHES=caches, DEBUG=debug, HYPERID_MFA=config):
        return ids(check_rate_limit_cache() + check_rate_limit_cache_is_shared())


@pytest.mark.parametrize("debug", [False, True])
def test_a_dummy_cache_under_a_push_limit_is_e018_with_or_without_debug(debug):
    assert cache_ids(DUMMY, debug=debug) == [E018]


def test_e018_is_an_ordinary_check_and_says_what_the_gate_answers():
    with override_settings(CACHES=DUMMY, DEBUG=True):
        [error] = [m for m in run_checks() if m.id == E018]
    assert "mfa_misconfigured" in error.msg
    assert "START_RATE_LIMIT" in error.hint


def test_a_dummy_cache_without_a_push_limit_is_quiet():
    assert cache_ids(DUMMY, START_RATE_LIMIT=None) == []


def test_a_per_process_cache_outside_debug_is_w017():
    with override_settings(CACHES=LOCMEM, DEBUG=False):
        [warning] = check_rate_limit_cache_is_shared()
    assert warning.id == W017
    assert "each process" in warning.msg
    assert W017 in warning.hint  # how to silence it for a single process


def test_w017_is_a_deployment_check():
    """So the test project's LocMemCache stays quiet in run_checks() and manage.py check."""
    with override_settings(CACHES=LOCMEM, DEBUG=False):
        assert W017 not in ids(run_checks())
        assert W017 in ids(run_checks(include_deployment_checks=True, tags=[Tags.caches]))


@pytest.mark.parametrize(
    "caches",
    [
        DATABASE,
        {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache"}},
        GENERIC,
    ],
    ids=["database", "file", "generic-add"],
)
def test_a_cache_whose_add_is_not_atomic_is_w017(caches, tmp_path):
    if "LOCATION" not in caches["default"]:
        caches = {"default": {**caches["default"], "LOCATION": str(tmp_path)}}
    with override_settings(CACHES=caches, DEBUG=False):
        [warning] = check_rate_limit_cache_is_shared()
    assert warning.id == W017
    assert "add() reads then writes" in warning.msg


@pytest.mark.parametrize("caches", [LOCMEM, DATABASE])
def test_w017_is_quiet_in_debug_and_without_a_push_limit(caches):
    assert cache_ids(caches, debug=True) == []
    assert cache_ids(caches, START_RATE_LIMIT=None) == []


@pytest.mark.parametrize("caches", [REDIS, SLOTS], ids=["redis", "own-add"])
def test_a_cache_with_an_atomic_add_of_its_own_is_quiet(caches):
    with override_settings(CACHES=caches):
        assert type(django_caches["default"]).__name__ in {"RedisCache", "SlotCache"}
    assert cache_ids(caches) == []


def test_an_unreadable_rate_is_only_e008(settings):
    assert cache_ids(DUMMY, START_RATE_LIMIT="5 a minute") == []
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": "5 a minute"}
    with override_settings(CACHES=DUMMY):
        assert [i for i in ids(run_checks()) if i.startswith("hyperid_mfa.")] == [E008]


def test_an_unusable_cache_backend_is_left_to_django():
    broken = {"default": {"BACKEND": "nowhere.Cache"}}
    assert cache_ids(broken) == []
    assert cache_ids({"other": LOCMEM["default"]}) == []  # Django's caches.E001


# --- W021: Django REST framework ---------------------------------------------------------


def test_rest_framework_installed_is_quiet():
    assert check_installed_apps() == []


def test_rest_framework_missing_from_installed_apps_is_w021():
    with modify_settings(INSTALLED_APPS={"remove": ["rest_framework"]}):
        [warning] = check_installed_apps()
        assert W021 in ids(run_checks(tags=[Tags.compatibility]))
    assert warning.id == W021
    assert "'rest_framework'" in warning.hint


# --- E023: a window the DRF permission's gate refuses -------------------------------------


def permission_view(**options):
    """A DRF view gated by MFAApproved, with these class attributes."""
    from rest_framework.permissions import IsAuthenticated
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from hyperid_mfa.permissions import MFAApproved

    def post(self, request):
        return Response({"paid": True})

    attributes = {
        "permission_classes": [IsAuthenticated, MFAApproved],
        "mfa_action": "payments.pay",
        "post": post,
        "__module__": "tests.payouts",
        **options,
    }
    return type("PayoutView", (APIView,), attributes)


@pytest.mark.parametrize(
    "options",
    [
        {"mfa_window": "600"},
        {"mfa_window": 0},
        {"mfa_window": 86_400},
        {"mfa_window": True},
        {"mfa_scope": "payouts"},
        {"mfa_window": 600, "mfa_scope": " "},
    ],
    ids=["string", "zero", "a day", "bool", "scope alone", "blank scope"],
)
def test_a_permission_gated_view_with_a_window_the_gate_refuses_is_e023(urlconf, options):
    urlconf(path("payouts/", permission_view(**options).as_view()))

    [error] = check_permission_windows()

    assert error.id == E023
    assert "tests.payouts.PayoutView (URL 'payouts/')" in error.msg
    assert E023 in ids(run_checks(tags=[Tags.urls]))


@pytest.mark.django_db
def test_such_a_view_answers_misconfigured_and_logs_what_to_fix(urlconf, hyperid_user, caplog):
    from rest_framework.test import APIClient

    urlconf(path("payouts/", permission_view(mfa_window="600").as_view()))
    client = APIClient()
    client.force_authenticate(hyperid_user)

    response = client.post("/payouts/")

    assert response.status_code == 500
    assert response.json()["code"] == "mfa_misconfigured"
    assert "'600'" not in response.json()["detail"]
    assert "tests.payouts.PayoutView: its mfa_* options are refused" in caplog.text


def test_a_permission_gated_view_with_a_good_window_or_none_is_quiet(urlconf):
    urlconf(
        path("a/", permission_view(mfa_window=600, mfa_scope="payouts").as_view()),
        path("b/", permission_view(mfa_window=14_400).as_view()),
        path("c/", permission_view().as_view()),
    )

    assert check_permission_windows() == []


def test_a_view_registered_under_several_urls_is_named_once(urlconf):
    view = permission_view(mfa_window="600").as_view()
    urlconf(path("a/", view), path("b/", include([path("c/", view)])))

    assert len(check_permission_windows()) == 1


# --- registration ------------------------------------------------------------------------


def test_every_check_here_is_registered_with_its_tag():
    from django.core.checks import registry

    registered = {
        check: set(check.tags)
        for check in registry.registry.get_checks(include_deployment_checks=True)
    }
    assert registered[deployment_checks.check_urls] == {Tags.urls}
    assert registered[deployment_checks.check_templates] == {Tags.templates}
    assert registered[check_rate_limit_cache] == {Tags.caches}
    assert registered[check_rate_limit_cache_is_shared] == {Tags.caches}
    assert registered[check_installed_apps] == {Tags.compatibility}
    assert registered[check_permission_windows] == {Tags.urls}
    assert check_rate_limit_cache_is_shared in registry.registry.deployment_checks
    assert check_rate_limit_cache_is_shared not in registry.registry.registered_checks


# --- E028: production settings that point at the simulator --------------------------------

#: What the README's "The HyperID simulator in your own project" sets for development.
SIMULATOR = {
    "API_BASE_URL": "http://127.0.0.1:8765",
    "ISSUER": "http://127.0.0.1:8765/auth/realms/HyperID",
}


def deploy_check(*args: str) -> str:
    """``manage.py check --deploy``'s output; SystemCheckError when it fails."""
    out = io.StringIO()
    call_command("check", "--deploy", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_production_settings_pointing_at_the_simulator_fail_check_deploy(settings, monkeypatch):
    # Attack 8 of issue 17: DEBUG off, HyperID's URLs on the simulator's loopback http.
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE", raising=False)  # Django's own error
    settings.DEBUG = False
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, **SIMULATOR}
    # The sign-in points where HYPERID_MFA does, as a project set up for the simulator has
    # it (else E026 would stop the plain check below).
    sign_in_apps = 0
    if hasattr(settings, "SOCIALACCOUNT_PROVIDERS"):
        providers = copy.deepcopy(settings.SOCIALACCOUNT_PROVIDERS)
        for app in providers["openid_connect"]["APPS"]:
            app["settings"]["server_url"] = SIMULATOR["ISSUER"]
            sign_in_apps += 1
        settings.SOCIALACCOUNT_PROVIDERS = providers
    call_command("check", stdout=io.StringIO())  # plain check: development stays quiet

    with pytest.raises(SystemCheckError) as failed:
        deploy_check()

    report = str(failed.value)
    assert report.count(E028) == 2 + sign_in_apps
    assert "HYPERID_MFA['API_BASE_URL'] is http://127.0.0.1:8765" in report
    assert "HYPERID_MFA['ISSUER'] is http://127.0.0.1:8765/auth/realms/HyperID" in report
    assert "simulator" in report


def deploy_ids() -> list[str]:
    return ids(run_checks(include_deployment_checks=True))


def test_the_same_settings_with_debug_on_pass_check_deploy(settings):
    settings.DEBUG = True
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, **SIMULATOR}

    assert E028 not in deploy_ids()


def test_hyperids_own_urls_pass_check_deploy(settings):
    settings.DEBUG = False
    settings.HYPERID_MFA = {
        key: value
        for key, value in settings.HYPERID_MFA.items()
        if key not in ("API_BASE_URL", "ISSUER")
    }

    assert E028 not in deploy_ids()


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8765",
        "http://LOCALHOST.:8765",
        "https://127.0.0.1",
        "http://127.0.0.53:8765",
        "http://127.1:8765",
        "http://2130706433:8765",
        "http://0x7f.0.0.1:8765",
        "http://0.0.0.0:8765",
        "http://[::1]:8765",
        "http://[::ffff:127.0.0.1]:8765",
        "http://[::]:8765",
        "https://hyperid.localhost",
        "http://user:pass@127.0.0.1:8765",
    ],
)
@pytest.mark.parametrize("key", ["API_BASE_URL", "ISSUER"])
def test_each_spelling_of_this_machine_is_e028_for_each_url(settings, key, url):
    settings.DEBUG = False
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, key: url}

    [error] = check_production_endpoints()

    assert error.id == E028
    assert f"HYPERID_MFA[{key!r}]" in error.msg
    assert "loopback" in error.msg
    assert "unset" in error.hint


@pytest.mark.parametrize(
    "url",
    [
        "https://api.hypersecureid.com",
        "https://127.0.0.1.nip.example",
        "https://[2001:db8::1]",
        "https://10.0.0.8",
        "https://localhost-hyperid.example",
    ],
)
def test_https_urls_of_other_hosts_are_not_e028(settings, url):
    settings.DEBUG = False
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "API_BASE_URL": url, "ISSUER": url}

    assert check_production_endpoints() == []


def test_plain_http_to_another_host_is_e004_not_a_second_error(settings):
    settings.DEBUG = False
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "API_BASE_URL": "http://hyperid.example"}

    assert check_production_endpoints() == []
    assert "hyperid_mfa.E004" in deploy_ids()


def test_a_url_the_setting_refuses_is_only_its_own_error(settings):
    settings.DEBUG = False
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "API_BASE_URL": "ftp://127.0.0.1"}

    assert check_production_endpoints() == []


def test_e028_is_a_deployment_check_tagged_security():
    from django.core.checks import registry

    assert check_production_endpoints in registry.registry.deployment_checks
    assert check_production_endpoints not in registry.registry.registered_checks
    assert set(check_production_endpoints.tags) == {Tags.security}


# --- W031: require_approval without MFAApprovalMiddleware -------------------------------

WITHOUT_MIDDLEWARE = {"remove": ["hyperid_mfa.middleware.MFAApprovalMiddleware"]}


def views_module(monkeypatch, source):
    """A module of views made of ``source``, importable by its name."""
    name = f"tests._views_{uuid.uuid4().hex}"
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(textwrap.dedent(source), name, "exec"), module.__dict__)  # noqa: S102
    return module


def test_the_middleware_in_middleware_is_quiet():
    assert check_approval_middleware() == []


@modify_settings(MIDDLEWARE=WITHOUT_MIDDLEWARE)
def test_plain_views_calling_require_approval_without_the_middleware_are_w031():
    [warning] = check_approval_middleware()

    assert warning.id == W031
    assert "withdraw (URL 'approval/function/')" in warning.msg
    assert "tests.approval_views.WithdrawView (URL 'approval/class/')" in warning.msg
    assert re.search(r"\) and \d+ more\)", warning.msg)  # three named, the others counted
    assert "WithdrawAPI" not in warning.msg
    assert "'hyperid_mfa.middleware.MFAApprovalMiddleware' to MIDDLEWARE" in warning.hint
    assert W031 in ids(run_checks(tags=[Tags.urls]))


@modify_settings(MIDDLEWARE=WITHOUT_MIDDLEWARE)
def test_drf_views_need_no_middleware(urlconf):
    urlconf(
        path("mfa/", include("hyperid_mfa.urls")),
        path("drf/", include([path("", approval_views.WithdrawAPI.as_view())])),
    )

    assert check_approval_middleware() == []


@modify_settings(MIDDLEWARE=WITHOUT_MIDDLEWARE)
def test_views_that_name_it_or_live_beside_an_import_of_it_are_w031(monkeypatch, urlconf):
    named = views_module(
        monkeypatch,
        """
        import hyperid_mfa

        def by_attribute(request):
            hyperid_mfa.require_approval(request, "a")
        """,
    )
    imported = views_module(
        monkeypatch,
        """
        from hyperid_mfa import require_approval

        def helper(request):
            require_approval(request, "b")

        def through_a_helper(request):
            return helper(request)
        """,
    )
    unrelated = views_module(monkeypatch, "def page(request):\n    return None\n")
    urlconf(
        path("a/", named.by_attribute),
        path("b/", imported.through_a_helper),
        path("c/", unrelated.page),
    )

    [warning] = check_approval_middleware()

    assert "by_attribute (URL 'a/')" in warning.msg
    assert "through_a_helper (URL 'b/')" in warning.msg
    assert "(URL 'c/')" not in warning.msg


@modify_settings(MIDDLEWARE=WITHOUT_MIDDLEWARE)
def test_a_site_that_does_not_use_require_approval_needs_no_middleware(urlconf):
    urlconf(path("mfa/", include("hyperid_mfa.urls")), path("gate/", include("tests.gate_views")))

    assert check_approval_middleware() == []


def test_a_subclass_of_the_middleware_counts(settings, monkeypatch):
    from hyperid_mfa.middleware import MFAApprovalMiddleware

    module = types.ModuleType("tests._our_middleware")
    module.Ours = type("Ours", (MFAApprovalMiddleware,), {})
    monkeypatch.setitem(sys.modules, "tests._our_middleware", module)
    settings.MIDDLEWARE = [
        *(m for m in settings.MIDDLEWARE if "MFAApprovalMiddleware" not in m),
        "tests._our_middleware.Ours",
        "tests.no_such_module.Middleware",  # Django reports that one
    ]

    assert check_approval_middleware() == []
