from django.urls import path

from . import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("sign-in/", views.sign_in, name="login"),
    path("sign-out/", views.sign_out, name="logout"),
    path("transfer/", views.transfer, name="transfer"),
    path("transfers/", views.transfers, name="transfers"),
    path("api/transfers/", api.TransferListCreateView.as_view(), name="api-transfers"),
]
