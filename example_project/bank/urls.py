from django.urls import path

from . import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.HyperIDLoginView.as_view(), name="login"),
    path("accounts/logout/", views.sign_out, name="logout"),
    path("accounts/hyperid/", views.reconnect_hyperid, name="reconnect-hyperid"),
    path("transfer/", views.transfer, name="transfer"),
    path("transfers/", views.transfers, name="transfers"),
    path("api/transfers/", api.TransferListCreateView.as_view(), name="api-transfers"),
]
