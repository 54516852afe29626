from pathlib import Path

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

import hyperid_mfa

from . import views

urlpatterns = [
    path("mfa/", include("hyperid_mfa.urls")),
    path("admin/", admin.site.urls),
    path("bench/health/", views.health, name="bench-health"),
    path("bench/plain/", views.plain_view, name="bench-plain"),
    path("bench/gated/", views.gated_view, name="bench-gated"),
    path("bench/otp/", views.otp_view, name="bench-otp"),
    path("bench/plain-write/", views.plain_write_view, name="bench-plain-write"),
    path("bench/gated-write/", views.gated_write_view, name="bench-gated-write"),
    path("bench/act/", views.act_view, name="bench-act"),
    path("bench/latency/", views.latency_view, name="bench-latency"),
    # The approval page's script and style (case 7), as a front server would serve them.
    re_path(
        r"^static/(?P<path>.*)$",
        serve,
        {"document_root": Path(hyperid_mfa.__file__).resolve().parent / "static"},
    ),
    path("bench/bare/<uuid:pk>/", views.BareRequestView.as_view(), name="bench-bare"),
]
