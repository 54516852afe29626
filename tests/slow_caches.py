"""Cache backends whose every call takes a while, as a networked cache's round trip does.

The push limit must count atomically. A counter read then written (get, then set)
loses increments only when calls overlap; in one process with the local-memory cache
they hardly ever do, so a race test there would pass a non-atomic counter. Each call
here first waits ``ROUND_TRIP`` seconds, outside the backend's own locking, so that
concurrent callers overlap on every call: an atomic ``incr`` stays atomic, a read
then a write does not.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.memcached import PyMemcacheCache
from django.core.cache.backends.redis import RedisCache

#: Seconds each cache call waits before it reaches the cache.
ROUND_TRIP = 0.005

_CALLS = (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "get_many",
    "set_many",
    "delete_many",
    "incr",
    "decr",
    "has_key",
    "clear",
)


def _slowed(method: Any) -> Any:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        time.sleep(ROUND_TRIP)
        return method(self, *args, **kwargs)

    call.__name__ = method.__name__
    return call


def _slow(backend: type) -> type:
    """A subclass of ``backend`` whose calls each take ``ROUND_TRIP`` first."""
    slowed = {name: _slowed(getattr(backend, name)) for name in _CALLS}
    return type(f"Slow{backend.__name__}", (backend,), slowed)


SlowLocMemCache = _slow(LocMemCache)
SlowRedisCache = _slow(RedisCache)
SlowPyMemcacheCache = _slow(PyMemcacheCache)
