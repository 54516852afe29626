"""A minimal Django project for the benchmarks: the app's API, a gated trivial view and
its bare twin, and a bare DRF view over the same table. Configured from the
environment (see ``settings``) so that gunicorn workers share the harness's database,
keys and fake HyperID."""
