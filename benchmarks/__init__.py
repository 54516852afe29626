"""Benchmarks of django-hyperid-mfa: ``python benchmarks/run.py`` (see benchmarks/README.md).

Not part of the distribution. ``tests/test_benchmarks.py`` runs every case in smoke
mode so that the harness keeps working.
"""
