"""URLs of the example project.

The app's own URLs (``path("mfa/", include("hyperid_mfa.urls"))``) join here once
``hyperid_mfa.urls`` exists.
"""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("admin/", admin.site.urls),
]
