"""The app's URLs: ``path("mfa/", include("hyperid_mfa.urls"))``, namespace ``hyperid_mfa``.

``request-list``, ``request-detail`` and ``request-cancel`` (both take the request's
UUID as ``pk``) and ``status-get``; see docs/api.md. ``resume`` (a key) sends a form
kept across a sign-in with HyperID again (:mod:`hyperid_mfa.gate.resume`).
"""

from django.urls import path

from .api.urls import urlpatterns as api_urlpatterns
from .gate.resume import resume_view

app_name = "hyperid_mfa"

urlpatterns = [
    *api_urlpatterns,
    # After signing in with HyperID: the form refused for want of a token, sent again.
    path("resume/<str:key>/", resume_view, name="resume"),
]
