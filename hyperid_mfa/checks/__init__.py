"""The system checks: every rule about the app's settings and its project.

Owns the ``HYPERID_MFA`` table of keys and defaults and the rules a value must
follow (``settings``: ``conf`` builds the settings only from what they accept), and
the checks of the project around the app: URLconf, templates, middleware, caches
(``deployment``). The rules import no module that reads settings; ``apps.py``
registers the checks.
"""
