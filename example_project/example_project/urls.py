"""URLs of the example project."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from hyperid_mfa.metrics import metrics_view

urlpatterns = [
    path("", include("bank.urls")),
    # allauth: "Sign in with HyperID" (/accounts/oidc/hyperid/login/) and its callback.
    path("accounts/", include("allauth.urls")),
    # The app's API: the approval page polls it; API clients may too.
    path("mfa/", include("hyperid_mfa.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
    # Prometheus metrics, for staff signed in (or a scraper with METRICS_TOKEN).
    path("metrics/", metrics_view, name="metrics"),
]
