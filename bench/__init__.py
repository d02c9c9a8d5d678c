"""The benchmark: carrot beside kombu alone, Celery, Dramatiq and Huey.

Run it with ``nox -s bench`` (or ``python -m bench`` in an environment
that has the peers installed); ``bench/README.md`` says how.
"""
