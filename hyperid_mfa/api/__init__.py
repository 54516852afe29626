"""The DRF API of hyperid_mfa (see docs/api.md)."""
