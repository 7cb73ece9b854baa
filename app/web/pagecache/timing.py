"""Server-Timing spans of one request: the middleware opens a collection per request (a thread
local: gunicorn runs one request per thread at a time) and code under it may time a part:

    with timing.span("exp"):        # e.g. around the call to the experience tier
        reply = upstream.call(...)

The middleware then reports ``cache`` (lookup), ``exp`` (if measured), ``render`` (the app's
time minus exp) and ``app`` (everything below the cache) in the Server-Timing header."""
import threading
import time
from contextlib import contextmanager

_local = threading.local()


def begin():
    _local.spans = {}


def end():
    spans = getattr(_local, "spans", None) or {}
    _local.spans = None
    return spans


def add(name, ms):
    spans = getattr(_local, "spans", None)
    if spans is not None:
        spans[name] = spans.get(name, 0.0) + ms


@contextmanager
def span(name):
    start = time.perf_counter()
    try:
        yield
    finally:
        add(name, (time.perf_counter() - start) * 1000)


def header(parts):
    """[(name, ms), ...] -> 'cache;dur=0.41, app;dur=12.30'."""
    return ", ".join(f"{name};dur={ms:.2f}" for name, ms in parts)
