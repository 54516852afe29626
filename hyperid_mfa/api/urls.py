"""The API's routes. Included by ``hyperid_mfa.urls``, which gives them the
``hyperid_mfa`` namespace: include that module, not this one."""

from django.urls import path

from . import views

urlpatterns = [
    path("requests/", views.RequestListView.as_view(), name="request-list"),
    # <str:pk>, not <uuid:pk>: a malformed id reaches the view and gets the API's
    # JSON 404 rather than the project's HTML one.
    path("requests/<str:pk>/", views.RequestDetailView.as_view(), name="request-detail"),
    path("requests/<str:pk>/cancel/", views.RequestCancelView.as_view(), name="request-cancel"),
    # HyperID's own path: mounted at "mfa-client/", the URL is HyperID's exactly.
    path("transaction/status-get", views.StatusGetView.as_view(), name="status-get"),
]
