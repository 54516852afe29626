"""The app's management commands (``manage.py hyperid_mfa_*``) and what they share (``base``)."""
