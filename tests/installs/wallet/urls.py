from django.apps import apps
from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("transfer/", views.transfer, name="transfer"),
    path("api/transfers/", views.TransferAPI.as_view(), name="transfer-api"),
    path("admin/", admin.site.urls),
    path("mfa/", include("hyperid_mfa.urls")),
]

# What each install path adds, as the README and docs/api.md say to.
if apps.is_installed("allauth.socialaccount"):
    urlpatterns.append(path("accounts/", include("allauth.urls")))
if apps.is_installed("mozilla_django_oidc"):
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))
if apps.is_installed("drf_spectacular"):
    from drf_spectacular.views import SpectacularAPIView

    from hyperid_mfa.api.schema import schema_view

    urlpatterns += [
        path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
        path("mfa/schema/", schema_view(mount="mfa/"), name="hyperid-mfa-schema"),
    ]
