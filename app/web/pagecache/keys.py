"""Which pages may be cached, and the key of each: a normalized URL.

Only the URL names listed in ``PARAMS`` are looked up at all (every other page, the forms,
the JSON tiers and /healthz never touch Redis). Each lists the query parameters its view
reads; all others are dropped from the key, so ``/?utm_source=x`` is the home page's entry.
Kept parameters are sorted, take their last value (what ``QueryDict.get`` and Django forms
read), lose surrounding spaces (the forms strip them) and are dropped when empty (every view here treats ``?q=`` as no q and ``?page=`` as
page 1). A view that starts reading a new parameter must list it here, or its variants would
share one entry: ``tests/unit/web/test_pagecache_keys.py`` checks the list against the views.

The key is ``pc:v1:<mode>:GET:<path>?<query>``; HEAD uses the GET key. The mode is part of
the key so that ttl and invalidate entries are never mixed. Keys longer than MAX_KEY are
hashed (SHA-256), which keeps a crafted long URL from making a huge key."""
import hashlib
from urllib.parse import urlencode

from django.conf import settings
from django.urls import Resolver404, resolve

from .tags import PREFIX

PARAMS = {
    "web:home": (),
    "web:search": ("page", "q"),
    "web:seller": ("page",),
    "web:listing": (),
}
MAX_KEY = 200


_routes = {}  # path -> URL name or None: the URLconf does not change while a process runs
_MAX_ROUTES = 10_000


def route(request):
    """The URL name of a cacheable page, or None."""
    return route_for_path(request.path_info)


def route_for_path(path):
    try:
        return _routes[path]
    except KeyError:
        pass
    try:
        name = resolve(path).view_name
    except Resolver404:
        name = None
    params = _params()
    name = name if name in params else None
    if params is PARAMS:  # tests may swap the table; only the real one is remembered
        if len(_routes) >= _MAX_ROUTES:
            _routes.clear()
        _routes[path] = name
    return name


def _params():
    return getattr(settings, "PAGE_CACHE_PARAMS", PARAMS)


def normalized_url(request, name):
    return normalize(request.path, name, request.GET.get)


def normalize(path, name, get):
    """`path` plus the parameters page `name` reads; get(param, default) reads one (the last
    value, as QueryDict.get does)."""
    pairs = []
    for param in sorted(_params()[name]):
        value = get(param, "").strip()
        if value:
            pairs.append((param, value))
    query = urlencode(pairs)
    return f"{path}?{query}" if query else path


def page_key(mode, url):
    key = f"{PREFIX}:{mode}:GET:{url}"
    if len(key) > MAX_KEY:
        key = f"{PREFIX}:{mode}:GET:#" + hashlib.sha256(url.encode()).hexdigest()
    return key
