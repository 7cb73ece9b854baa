"""Counters of the page cache: how each page request was answered.

``hit`` / ``miss`` / ``stale`` / ``bypass`` match the X-Cache header of the answers; the other
fields explain them: ``stored`` (entries written), ``refused`` (a write happened during the
render, not stored), ``uncacheable`` (a rendered page that may not be shared), ``waited``
(requests that waited for another's render), ``redis_error`` (calls that failed or were
skipped by the open breaker).

Each process counts in memory (exact, also while Redis is down) and hands its pending counts
to the next Lua script it runs anyway (store.lookup / store.finish), which adds them to two
Redis hashes: ``pc:v1:stats:<mode>`` (every instance) and ``pc:v1:stats:<mode>:<instance>``.
So counting costs no round trip, and the Redis totals lag by at most the last request of each
worker (``flush()`` sends them now). A notebook reads them with ``read_totals(redis_url)``
(redis-py only, no Django) or over HTTP at ``/cache/stats``."""
import threading
from collections import Counter

from .tags import PREFIX

FIELDS = ("hit", "miss", "stale", "bypass", "stored", "refused", "uncacheable", "waited",
          "redis_error")

_lock = threading.Lock()
_process = Counter()
_pending = Counter()


def count(field, n=1):
    with _lock:
        _process[field] += n
        _pending[field] += n


def take_pending():
    """The counts not yet in Redis, as (field, n) pairs; the caller sends them or gives them
    back with restore()."""
    with _lock:
        pending = [(field, n) for field, n in _pending.items() if n]
        _pending.clear()
    return pending


def restore(pending):
    with _lock:
        for field, n in pending:
            _pending[field] += n


def process_counts():
    with _lock:
        return {field: _process.get(field, 0) for field in FIELDS}


def reset_process():
    with _lock:
        _process.clear()
        _pending.clear()


def keys(mode, instance):
    total = f"{PREFIX}:stats:{mode}"
    return total, f"{total}:{instance}"


def _decode(mapping):
    counts = {field: 0 for field in FIELDS}
    for field, value in mapping.items():
        counts[field.decode() if isinstance(field, bytes) else field] = int(value)
    return counts


def read(client, mode, instance=None):
    """Totals for `mode` over every instance, or for one instance."""
    total, per_instance = keys(mode, instance or "")
    return _decode(client.hgetall(per_instance if instance else total))


def read_totals(redis_url, mode="invalidate", instance=None):
    """For notebooks and the benchmark: the counters in Redis, with a short-timeout client."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return read(client, mode, instance)
    finally:
        client.close()


def clear(client, mode):
    """Deletes the counters of `mode` (every instance): the start of a measurement."""
    total, _ = keys(mode, "")
    names = [total, *client.scan_iter(match=f"{total}:*", count=1000)]
    client.delete(*names)
