"""django-hyperid-mfa: gate sensitive Django actions on a HyperID push-MFA approval."""

__version__ = "0.1.0.dev0"
