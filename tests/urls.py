from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("mfa/", include("hyperid_mfa.urls")),
    path("gate/", include("tests.gate_views")),
]
