"""The page cache middleware of the web tier (modes off, ttl, invalidate) and two small helpers
of the ``django`` baseline mode. The design is in the package docstring (web/pagecache).

PageCacheMiddleware sits right after marketplace.middleware.served_by, outside every other web
middleware, so that a hit skips all of them: the entry holds the headers they added.

One request, in invalidate mode:

1. Not a cacheable page (keys.route), not GET/HEAD, or the visitor carries the auth cookie or
   a pending flash message: render, ``X-Cache: BYPASS``; Redis is not asked.
2. LOOKUP (one round trip). Redis failing or the breaker open: render, BYPASS.
3. Entry current (tag versions unchanged) and before its soft expiry: HIT.
4. Entry current but expired by time: whoever gets the render lock (SET NX PX) renders (MISS);
   everybody else gets the old copy at once with ``X-Cache: STALE``. Serving it is safe: no
   write touched its tags since it was rendered.
5. Entry missing, or invalidated by a write: the old copy is never served. Whoever gets the
   lock renders; the others poll for its entry (HIT) for up to PAGE_CACHE_WAIT seconds and
   render themselves if it does not come, or as soon as the lock is gone without one.
6. After a render, FINISH stores the page if it may be shared (``storable``), else leaves a
   short "pass" marker so the next requests for it skip steps 4-5's lock and wait.

In ttl mode step 3 ignores tags. In off mode every page is rendered, with X-Cache: BYPASS."""
import time
import uuid

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.http import HttpResponse, JsonResponse
from django.utils.cache import patch_vary_headers

from marketplace.errors import is_api_path

from . import conn, keys, stats, store, tags, timing

MODES = ("off", "ttl", "invalidate", "django")
FOUND = "pagecache.found"  # environ key of a lookup made by the WSGI fast path
STATS_PATH = "/cache/stats"
HIT, MISS, STALE, BYPASS = "HIT", "MISS", "STALE", "BYPASS"

# Headers that describe one answer, not the page: never stored, never replayed.
_NOT_STORED = {"x-cache", "server-timing", "x-served-by", "set-cookie", "content-length",
               "date", "connection", "keep-alive", "transfer-encoding"}
_PRIVATE_CACHE_CONTROL = {"private", "no-store", "no-cache"}

wall_clock = time.time  # soft expiry is wall-clock time, shared by every instance; tests move it


def _ms(start):
    return (time.perf_counter() - start) * 1000


class PageCacheMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.mode = settings.CACHE_MODE
        if self.mode not in MODES:
            raise ImproperlyConfigured(f"CACHE_MODE must be one of {MODES}, not {self.mode!r}")
        if self.mode == "django":
            raise MiddlewareNotUsed  # Django's own cache middleware does the work
        self.check = self.mode == "invalidate"
        self.ttl = float(settings.CACHE_TTL)
        self.grace = float(getattr(settings, "PAGE_CACHE_GRACE", 30))
        self.lock_ms = float(getattr(settings, "PAGE_CACHE_LOCK_TTL", 5)) * 1000
        self.wait = float(getattr(settings, "PAGE_CACHE_WAIT", 1.0))
        self.pass_ms = float(getattr(settings, "PAGE_CACHE_PASS_TTL", 10)) * 1000
        self.max_bytes = int(getattr(settings, "PAGE_CACHE_MAX_BYTES", 1024 * 1024))
        self.stats_keys = stats.keys(self.mode, settings.INSTANCE)
        self.private_cookies = (settings.AUTH_COOKIE_NAME, CookieStorage.cookie_name)
        self.on_recovery = tags.bump_epoch if self.check else None
        self.static_prefix = "/" + settings.STATIC_URL.lstrip("/") if settings.STATIC_URL else None

    # --- the request ------------------------------------------------------------------------

    def __call__(self, request):
        path = request.path
        if path == STATS_PATH:
            return self.stats_page(request)
        if is_api_path(path) or path == "/healthz" or (
                self.static_prefix and path.startswith(self.static_prefix)):
            return self.get_response(request)
        timing.begin()
        try:
            response, state, cache_ms = self.answer(request)
        finally:
            spans = timing.end()
        stats.count(state.lower())
        response["X-Cache"] = state
        parts = [("cache", cache_ms)] if state != BYPASS or cache_ms else []
        if "app" in spans:
            exp = spans.get("exp")
            if exp is not None:
                parts += [("exp", exp), ("render", max(0.0, spans["app"] - exp))]
            parts.append(("app", spans["app"]))
        if parts:
            response["Server-Timing"] = timing.header(parts)
        return response

    def answer(self, request):
        """(response, X-Cache state, ms spent on cache lookups)."""
        name = None
        if self.mode != "off" and request.method in ("GET", "HEAD"):
            name = keys.route(request)
        if name is None or any(cookie in request.COOKIES for cookie in self.private_cookies):
            return self.render(request), BYPASS, 0.0
        key = keys.page_key(self.mode, keys.normalized_url(request, name))
        early = request.META.pop(FOUND, None)  # the WSGI fast path's lookup (web.pagecache.wsgi)
        if early is not None and early[0] == key:
            _, found, cache_ms = early
        else:
            start = time.perf_counter()
            try:
                found = self.lookup(key)
            except conn.CacheDown:
                return self.render(request), BYPASS, _ms(start)
            cache_ms = _ms(start)

        if found.exists and found.fresh:
            if wall_clock() < found.meta["x"]:
                return self.replay(found), HIT, cache_ms
            token = self.acquire(key) if request.method == "GET" else None
            if token is None:
                return self.replay(found), STALE, cache_ms
            return self.render_and_finish(request, key, found.clock, token), MISS, cache_ms

        # Missing, or invalidated by a write since it was stored: never served again.
        if request.method == "HEAD":
            return self.render(request), MISS, cache_ms
        if found.passed:
            return self.render_and_finish(request, key, found.clock, ""), MISS, cache_ms
        token = self.acquire(key)
        if token is not None:
            return self.render_and_finish(request, key, found.clock, token), MISS, cache_ms
        start = time.perf_counter()
        waited = self.wait_for(key)
        cache_ms += _ms(start)
        stats.count("waited")
        if waited is not None and waited.exists and waited.fresh and wall_clock() < waited.meta["x"]:
            return self.replay(waited), HIT, cache_ms
        c0 = waited.clock if waited is not None else found.clock
        return self.render_and_finish(request, key, c0, ""), MISS, cache_ms

    # --- Redis --------------------------------------------------------------------------------

    def redis(self, call):
        """call(client, counts): runs with this process's pending counters, which travel in the
        same script; on failure they stay pending and CacheDown is raised."""
        counts = stats.take_pending()
        try:
            return conn.execute(lambda client: call(client, counts), on_recovery=self.on_recovery)
        except conn.CacheDown:
            stats.restore(counts)
            stats.count("redis_error")
            raise

    def lookup(self, key):
        return self.redis(lambda client, counts: store.lookup(
            client, key, self.check, self.stats_keys, counts))

    def acquire(self, key):
        """The render lock's token if this request got the lock, else None."""
        token = uuid.uuid4().hex
        try:
            got = conn.execute(lambda client: store.try_lock(client, key, token, self.lock_ms),
                               on_recovery=self.on_recovery)
        except conn.CacheDown:
            stats.count("redis_error")
            return None
        return token if got else None

    def wait_for(self, key):
        """Polls until the renderer's entry is there, the lock is gone without one, or
        PAGE_CACHE_WAIT passed; returns the last lookup (None if Redis failed)."""
        deadline = time.perf_counter() + self.wait
        delay, found = 0.005, None
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return found
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)
            try:
                found = self.lookup(key)
            except conn.CacheDown:
                return None
            if found.exists and found.fresh and wall_clock() < found.meta["x"]:
                return found
            if not found.locked:
                return found

    # --- rendering and storing ----------------------------------------------------------------

    def render(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        timing.add("app", _ms(start))
        return response

    def render_and_finish(self, request, key, c0, token):
        response = self.render(request)
        reason = self.unstorable(request, response)
        now = wall_clock()
        meta = body = page_tags = None
        if reason is None:
            body = response.content
            page_tags = tags.parse(response.get("X-Cache-Tags")) if self.check else []
            meta = {"s": response.status_code, "c": now, "x": now + self.ttl,
                    "h": [[name, value] for name, value in response.items()
                          if name.lower() not in _NOT_STORED]}
        try:
            result = self.redis(lambda client, counts: store.finish(
                client, key, check=self.check, c0=c0, meta=meta, body=body or b"",
                tags=page_tags or (), ttl_ms=(self.ttl + self.grace) * 1000,
                pass_ms=self.pass_ms, token=token, stats_keys=self.stats_keys, counts=counts))
        except conn.CacheDown:
            return response
        stats.count({1: "stored", 0: "uncacheable", -1: "refused"}[result])
        return response

    def unstorable(self, request, response):
        """Why this answer may not be shared with other visitors (None: it may)."""
        if request.method != "GET":
            return "method"
        if response.status_code != 200:
            return "status"
        if response.streaming:
            return "streaming"
        if response.cookies or response.has_header("Set-Cookie"):
            return "sets a cookie"
        cache_control = {part.strip().split("=")[0].lower()
                         for part in response.get("Cache-Control", "").split(",")}
        if cache_control & _PRIVATE_CACHE_CONTROL:
            return "private"
        vary = {part.strip().lower() for part in response.get("Vary", "").split(",")}
        if "cookie" in vary or "*" in vary:
            return "varies on cookie"
        if request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
            return "carries a CSRF token"
        if self.check:
            try:
                if not response.get("X-Cache-Tags"):
                    return "no cache tags"
                tags.parse(response["X-Cache-Tags"])
            except ValueError:
                return "too many tags"
        if len(response.content) > self.max_bytes:
            return "too large"
        return None

    @staticmethod
    def replay(found):
        response = HttpResponse(found.body, status=found.meta["s"])
        for name, value in found.meta["h"]:
            response[name] = value
        response["Content-Length"] = str(len(found.body))
        return response

    # --- /cache/stats -------------------------------------------------------------------------

    def stats_page(self, request):
        """This process's counters and, from Redis, the totals of every instance (JSON)."""
        totals = instance = None
        if self.mode != "off":
            try:
                totals, instance = conn.execute(lambda client: self._flush_and_read(client),
                                                full_client=True)
            except conn.CacheDown:
                pass
        response = JsonResponse({
            "mode": self.mode, "instance": settings.INSTANCE,
            "breaker_open": self.mode != "off" and conn.breaker().is_open,
            "process": stats.process_counts(), "instance_totals": instance, "totals": totals})
        response["Cache-Control"] = "no-store"
        return response

    def _flush_and_read(self, client):
        counts = stats.take_pending()
        try:
            with client.pipeline(transaction=False) as pipe:
                for field, n in counts:
                    for name in self.stats_keys:
                        pipe.hincrby(name, field, n)
                pipe.execute()
        except Exception:
            stats.restore(counts)
            raise
        return (stats.read(client, self.mode),
                stats.read(client, self.mode, settings.INSTANCE))


def flush():
    """Sends this process's pending counters to Redis now (tests, end of a measurement)."""
    mode = settings.CACHE_MODE
    counts = stats.take_pending()
    if not counts or mode not in ("ttl", "invalidate"):
        return
    names = stats.keys(mode, settings.INSTANCE)

    def send(client):
        with client.pipeline(transaction=False) as pipe:
            for field, n in counts:
                for name in names:
                    pipe.hincrby(name, field, n)
            pipe.execute()

    try:
        conn.execute(send, full_client=True)
    except conn.CacheDown:
        stats.restore(counts)


# --- the django baseline mode ---------------------------------------------------------------

class DjangoModeStatus:
    """django mode only: ``X-Cache: HIT|MISS`` on pages, read from what Django's
    FetchFromCacheMiddleware left on the request, so the baseline is observable too."""

    def __init__(self, get_response):
        if settings.CACHE_MODE != "django":
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method in ("GET", "HEAD") and not is_api_path(request.path):
            hit = getattr(request, "_cache_update_cache", None) is False
            response["X-Cache"] = HIT if hit else MISS
        return response


class DjangoVaryOnCookie:
    """django mode only: ``Vary: Cookie`` on every page, as Django's docs advise for pages
    that differ per user (vary_on_cookie); without it Django's cache would serve the anonymous
    home page to a logged-in visitor. Must sit inside UpdateCacheMiddleware."""

    def __init__(self, get_response):
        if settings.CACHE_MODE != "django":
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not is_api_path(request.path):
            patch_vary_headers(response, ("Cookie",))
        return response
