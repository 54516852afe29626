"""The app's URLs: ``path("mfa/", include("hyperid_mfa.urls"))``, namespace ``hyperid_mfa``.

``request-list``, ``request-detail`` and ``request-cancel`` (both take the request's
UUID as ``pk``) and ``status-get``; see docs/api.md.
"""

from .api.urls import urlpatterns as api_urlpatterns

app_name = "hyperid_mfa"

urlpatterns = [
    *api_urlpatterns,
]
