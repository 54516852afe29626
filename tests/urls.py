from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from hyperid_mfa.api.schema import HAVE_SPECTACULAR, schema_view
from hyperid_mfa.metrics import metrics_view
from tests.gate_views import statement

urlpatterns = [
    path("admin/", admin.site.urls),
    path("mfa/", include("hyperid_mfa.urls")),
    path("gate/", include("tests.gate_views")),
    path("approval/", include("tests.approval_views")),
    path("atomic/", include("tests.atomic_views")),
    path("windows/", include("tests.window_views")),
    path("metrics/", metrics_view, name="metrics"),
    # A gated view whose URL starts with a variable segment of any text: the path the
    # approval page re-submits to is the request's own (tests/test_origins.py).
    re_path(r"^(?P<account>[\s\S]+)/statement/$", statement),
]

if settings.HAVE_ALLAUTH:
    urlpatterns.append(path("accounts/", include("allauth.urls")))
if settings.HAVE_MOZILLA_OIDC:
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))

if HAVE_SPECTACULAR:  # the openapi extra; the API's schema, fuzzed by tests/test_api_fuzz.py
    urlpatterns.append(path("schema/", schema_view(mount="mfa/"), name="schema"))
