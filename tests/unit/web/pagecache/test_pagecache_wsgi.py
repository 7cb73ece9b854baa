"""The WSGI fast path (web.pagecache.wsgi): it answers plain hits itself, with the same key,
headers and counters as the middleware, and hands everything else to Django untouched but for
its lookup, which the middleware reuses."""
import io

import pytest
from django.conf import settings as django_settings
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory

from web.pagecache import keys, middleware, store, tags, wsgi

pytestmark = pytest.mark.django_db(transaction=True)


class Spy:
    """Django's WSGI handler, counting the requests that reach it."""

    def __init__(self):
        self.django = WSGIHandler()
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.django(environ, start_response)


@pytest.fixture
def site(page_cache, listing):
    spy = Spy()
    return wsgi.FastPath(spy), spy


def call(app, path="/", method="GET", query="", cookie=None):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
               "SCRIPT_NAME": "", "SERVER_NAME": "testserver", "SERVER_PORT": "80",
               "HTTP_HOST": "testserver", "SERVER_PROTOCOL": "HTTP/1.1",
               "wsgi.input": io.BytesIO(b""), "wsgi.errors": io.StringIO(),
               "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.multithread": True,
               "wsgi.multiprocess": True, "wsgi.run_once": False}
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(headers)

    chunks = app(environ, start_response)
    answer["body"] = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return answer


def test_a_hit_is_answered_without_django(site):
    app, spy = site
    first, second = call(app), call(app)
    assert first["headers"]["X-Cache"] == "MISS" and spy.calls == 1
    assert second["headers"]["X-Cache"] == "HIT" and spy.calls == 1
    assert second["status"] == "200 OK" and second["body"] == first["body"]
    assert "Walnut writing desk" in second["body"].decode()


def test_a_fast_hit_carries_the_headers_of_a_middleware_hit(site):
    app, spy = site
    call(app)
    fast = call(app)["headers"]
    slow = call(spy.django)["headers"]  # Django alone: the middleware serves the hit
    assert slow["X-Cache"] == "HIT"
    ignored = {"Server-Timing", "Date"}
    assert {name: value for name, value in fast.items() if name not in ignored} == {
        name: value for name, value in slow.items() if name not in ignored}
    assert fast["X-Served-By"] == django_settings.INSTANCE


def test_head_is_a_fast_hit_too(site):
    app, spy = site
    call(app)
    assert call(app, method="HEAD")["headers"]["X-Cache"] == "HIT" and spy.calls == 1


def test_the_auth_and_messages_cookies_go_to_django(site):
    app, spy = site
    call(app)
    for cookie in (f"{django_settings.AUTH_COOKIE_NAME}=some-token", "messages=pending",
                   f"csrftoken=x; {django_settings.AUTH_COOKIE_NAME}=t"):
        assert call(app, cookie=cookie)["headers"]["X-Cache"] == "BYPASS"
    assert call(app, cookie="csrftoken=abc")["headers"]["X-Cache"] == "HIT"
    assert spy.calls == 4


def test_forms_posts_and_unusual_paths_go_to_django(site):
    app, spy = site
    for path, method in (("/login", "GET"), ("/", "POST"), ("/healthz", "GET"),
                         ("/caf%C3%A9", "GET")):
        call(app, path=path, method=method)
    assert spy.calls == 4


def test_after_a_write_django_renders_and_reuses_the_fast_lookup(site, monkeypatch):
    app, spy = site
    call(app)
    tags.bump({"listings"})
    lookups = []
    original = store.lookup
    monkeypatch.setattr(store, "lookup", lambda *args, **kwargs: lookups.append(1) or original(
        *args, **kwargs))
    answer = call(app)
    assert answer["headers"]["X-Cache"] == "MISS" and spy.calls == 2
    assert len(lookups) == 1  # the middleware did not ask Redis a second time


def test_with_redis_stopped_django_serves_every_page(site, page_cache):
    app, spy = site
    call(app)
    page_cache.stop()
    answer = call(app)
    assert answer["status"] == "200 OK" and answer["headers"]["X-Cache"] == "BYPASS"


@pytest.mark.parametrize("url", ["/", "/?utm_source=x", "/search?q=desk&page=2&ref=1",
                                 "/search?page=2&q=+desk", "/search?q=", "/sellers/3?page=2",
                                 "/listings/7?x=1", "/search?q=a&q=b"])
def test_fast_path_and_middleware_compute_the_same_key(url):
    path, _, query = url.partition("?")
    request = RequestFactory().get(url)
    name = keys.route(request)
    from urllib.parse import parse_qsl

    fast = keys.normalize(path, name, dict(parse_qsl(query, keep_blank_values=True)).get)
    assert fast == keys.normalized_url(request, name)


def test_wrap_leaves_the_application_alone_unless_pages_are_cached(settings, page_cache):
    app = object()
    settings.CACHE_MODE = "off"
    assert wsgi.wrap(app) is app
    settings.CACHE_MODE = "django"
    assert wsgi.wrap(app) is app
    settings.CACHE_MODE = "invalidate"
    assert isinstance(wsgi.wrap(app), wsgi.FastPath)


def test_fast_hits_are_counted(site, page_cache):
    app, _ = site
    call(app)
    call(app)
    call(app)
    middleware.flush()
    from web.pagecache import stats

    totals = stats.read(page_cache.client(), "invalidate")
    assert totals["hit"] == 2 and totals["miss"] == 1
