"""Sign-in integrations: HyperID's tokens from the OpenID Connect libraries Django
sites already use (django-allauth, mozilla-django-oidc), stored for the gate."""
