"""An optional fast path for cache hits, in front of Django's WSGI handler.

The middleware (``middleware.PageCacheMiddleware``) is the page cache: every rule about what
is cached, stored, locked, served STALE or bypassed lives there. But a hit served by it still
pays for Django's request handling (WSGIRequest, request_started/finished signals, the
middleware adapters, HttpResponse), which measured about as much CPU as the rest of the hit
together. This wrapper answers only the plainest case itself: a GET or HEAD of a cacheable
page, from a visitor without the auth or messages cookie, whose entry is current and before
its soft expiry. It computes the same key (``keys``), runs the same LOOKUP script and counts
the same ``hit``; everything else, including a hit it is unsure about, goes to Django with the
lookup's result attached (``environ["pagecache.found"]``), so the middleware decides without
asking Redis again.

Use, in the WSGI module of the web tier (marketplace/wsgi.py):

    application = web.pagecache.wsgi.wrap(get_wsgi_application())

``wrap`` returns the application unchanged unless this process serves the web tier in ttl or
invalidate mode; ``make_application()`` builds the wrapped application for gunicorn."""
import time
from http import HTTPStatus
from urllib.parse import parse_qsl

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.http.cookie import parse_cookie

from . import conn, keys, middleware, stats, store, tags, timing

FOUND = middleware.FOUND  # environ key: (key, Found, lookup ms), for the middleware


def _status_line(code):
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


class FastPath:
    def __init__(self, app):
        self.app = app
        self.mode = settings.CACHE_MODE
        self.check = self.mode == "invalidate"
        self.stats_keys = stats.keys(self.mode, settings.INSTANCE)
        self.private_cookies = (settings.AUTH_COOKIE_NAME, CookieStorage.cookie_name)
        self.instance = settings.INSTANCE
        self.on_recovery = tags.bump_epoch if self.check else None

    def __call__(self, environ, start_response):
        answer = self.hit(environ)
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def hit(self, environ):
        """(status, headers, body) of a hit, or None for Django to answer."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        path = environ.get("PATH_INFO", "")
        # Django decodes PATH_INFO from latin-1 to UTF-8 and prefixes SCRIPT_NAME: anything
        # but a plain ASCII path at the root goes to Django, which keys it the same way.
        if not path.isascii() or "%" in path or environ.get("SCRIPT_NAME"):
            return None
        name = keys.route_for_path(path)
        if name is None:
            return None
        cookie = environ.get("HTTP_COOKIE")
        if cookie:
            cookies = parse_cookie(cookie)
            if any(private in cookies for private in self.private_cookies):
                return None
        query = environ.get("QUERY_STRING", "")
        if query:
            params = dict(parse_qsl(query, keep_blank_values=True))
            url = keys.normalize(path, name, params.get)
        else:
            url = path
        key = keys.page_key(self.mode, url)
        start = time.perf_counter()
        counts = stats.take_pending()
        try:
            found = conn.execute(
                lambda client: store.lookup(client, key, self.check, self.stats_keys, counts),
                on_recovery=self.on_recovery)
        except conn.CacheDown:
            stats.restore(counts)
            stats.count("redis_error")
            return None  # the middleware finds Redis down too (or the breaker open): BYPASS
        cache_ms = (time.perf_counter() - start) * 1000
        if not (found.exists and found.fresh and middleware.wall_clock() < found.meta["x"]):
            environ[FOUND] = (key, found, cache_ms)
            return None
        stats.count("hit")
        headers = [(name_, value) for name_, value in found.meta["h"]]
        headers += [("Content-Length", str(len(found.body))), ("X-Cache", "HIT"),
                    ("Server-Timing", timing.header([("cache", cache_ms)])),
                    ("X-Served-By", self.instance)]
        return _status_line(found.meta["s"]), headers, found.body


def wrap(app):
    """`app` behind the fast path when this process serves cached web pages; else `app`."""
    if "web" not in settings.TIERS or settings.CACHE_MODE not in ("ttl", "invalidate"):
        return app
    return FastPath(app)


def make_application():
    """Django's WSGI application behind the fast path: `gunicorn
    'web.pagecache.wsgi:make_application()'` (the lab's benchmark starts one this way)."""
    from django.core.wsgi import get_wsgi_application

    return wrap(get_wsgi_application())
