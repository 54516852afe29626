from typing import Any

from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.http import HttpRequest

from hyperid_mfa.testing.authenticator import AUTHENTICATOR_PATH, Authenticator


def hyperid_simulator(request: HttpRequest) -> dict[str, Any]:
    """Links to the simulator's phone pages, shown on every page of the demo."""
    simulator = settings.HYPERID_SIMULATOR_URL
    user = getattr(request, "user", None)
    phone_url = simulator + AUTHENTICATOR_PATH
    if user is not None and user.is_authenticated:
        # The phone of the user's HyperID account (its subject), as allauth recorded it.
        subject = (
            SocialAccount.objects.filter(user=user, provider="hyperid")
            .values_list("uid", flat=True)
            .first()
        )
        phone_url = simulator + Authenticator.phone_path(subject or user.get_username())
    return {"hyperid_simulator_url": simulator, "hyperid_phone_url": phone_url}
