"""A minimal Django project for the benchmarks: the app's API, a gated trivial view, its
bare twin and its twin behind django-otp's check, and a bare DRF view over the same
table. Configured from the
environment (see ``settings``) so that gunicorn workers share the harness's database,
keys and fake HyperID."""
