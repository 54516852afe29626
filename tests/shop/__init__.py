"""A small shop whose admin protects IBANs, deletes and bulk actions with
``MFAProtectedAdminMixin``: what tests/test_admin_step_up.py and
tests/test_admin_browser.py drive. Not part of the app."""
