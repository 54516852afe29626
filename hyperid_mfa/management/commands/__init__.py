"""The commands: ``hyperid_mfa_poll``, ``_purge``, ``_rotate_keys``, ``_simulator``."""
