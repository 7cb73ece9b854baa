"""The page cache middleware on its own, against a real Redis: a counting view stands in for
the web tier's views, so each test says exactly how many renders a sequence of requests cost."""
import threading
import time
from collections import Counter

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from web.pagecache import conn, middleware, stats, store, tags
from web.pagecache.keys import page_key
from web.pagecache.middleware import PageCacheMiddleware

factory = RequestFactory()


class CountingView:
    """A stand-in view: renders `body` version N (N = its render count) with the given tags."""

    def __init__(self, tags="listings", status=200, headers=None, cookie=False, delay=0.0):
        self.tags, self.status, self.headers = tags, status, headers or {}
        self.cookie, self.delay = cookie, delay
        self.renders = 0
        self.lock = threading.Lock()
        self.during_render = None  # a hook run inside the render

    def __call__(self, request):
        with self.lock:
            self.renders += 1
            number = self.renders
        if self.during_render:
            self.during_render()
        if self.delay:
            time.sleep(self.delay)  # a slow render, not a wait for readiness
        response = HttpResponse(f"<p>render {number}</p>", status=self.status)
        if self.tags:
            response["X-Cache-Tags"] = self.tags
        for name, value in self.headers.items():
            response[name] = value
        if self.cookie:
            response.set_cookie("csrftoken", "x")
        return response


@pytest.fixture
def view(page_cache):
    return CountingView()


@pytest.fixture
def cache(view):
    return PageCacheMiddleware(view)


@pytest.fixture
def clock(monkeypatch):
    """The wall clock the soft expiry is compared with, moved by tests instead of waiting."""
    class Clock:
        now = time.time()

        def __call__(self):
            return self.now

        def advance(self, seconds):
            self.now += seconds

    fake = Clock()
    monkeypatch.setattr(middleware, "wall_clock", fake)
    return fake


def get(cache, path="/", **kwargs):
    return cache(factory.get(path, **kwargs))


def test_first_request_is_a_miss_and_the_second_a_hit(cache, view):
    first, second = get(cache), get(cache)
    assert first["X-Cache"] == "MISS" and second["X-Cache"] == "HIT"
    assert first.content == second.content == b"<p>render 1</p>"
    assert view.renders == 1


def test_a_hit_replays_status_and_headers_but_not_per_answer_ones(page_cache):
    view = CountingView(headers={"X-Frame-Options": "DENY", "Content-Type": "text/html; x=1"})
    cache = PageCacheMiddleware(view)
    get(cache)
    hit = get(cache)
    assert hit.status_code == 200
    assert hit["X-Frame-Options"] == "DENY" and hit["Content-Type"] == "text/html; x=1"
    assert hit["X-Cache-Tags"] == "listings"
    assert hit["Content-Length"] == str(len(hit.content))
    assert hit["Server-Timing"].startswith("cache;dur=")


def test_a_miss_reports_cache_and_app_time_in_server_timing(cache):
    timing = get(cache)["Server-Timing"]
    assert timing.startswith("cache;dur=") and "app;dur=" in timing


def test_head_is_answered_from_the_get_entry(cache, view):
    get(cache)
    head = cache(factory.head("/"))
    assert head["X-Cache"] == "HIT" and view.renders == 1


def test_a_head_miss_renders_but_stores_nothing(cache, view):
    assert cache(factory.head("/"))["X-Cache"] == "MISS"
    assert get(cache)["X-Cache"] == "MISS"
    assert view.renders == 2


def test_unused_query_parameters_share_the_entry_and_used_ones_do_not(cache, view):
    get(cache, "/?utm_source=mail")
    assert get(cache, "/")["X-Cache"] == "HIT"
    get(cache, "/search?q=desk&page=2&ref=x")
    assert get(cache, "/search?page=2&q=desk")["X-Cache"] == "HIT"
    assert get(cache, "/search?q=lamp&page=2")["X-Cache"] == "MISS"
    assert view.renders == 3


@pytest.mark.parametrize("make_view", [
    lambda: CountingView(cookie=True),
    lambda: CountingView(status=404),
    lambda: CountingView(status=302),
    lambda: CountingView(headers={"Cache-Control": "private"}),
    lambda: CountingView(headers={"Cache-Control": "max-age=0, no-store"}),
    lambda: CountingView(headers={"Vary": "Accept-Encoding, Cookie"}),
    lambda: CountingView(tags=""),  # invalidate mode cannot know when it goes stale
], ids=["sets-cookie", "404", "redirect", "private", "no-store", "vary-cookie", "no-tags"])
def test_pages_that_may_not_be_shared_are_never_stored(page_cache, make_view):
    view = make_view()
    cache = PageCacheMiddleware(view)
    assert [get(cache)["X-Cache"] for _ in range(3)] == ["MISS"] * 3
    assert view.renders == 3
    assert not page_cache.client().exists(page_key("invalidate", "/"))


def test_a_page_that_used_a_csrf_token_is_never_stored(page_cache):
    def view(request):
        request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
        response = HttpResponse("<form>token</form>")
        response["X-Cache-Tags"] = "listings"
        return response

    cache = PageCacheMiddleware(view)
    assert [get(cache)["X-Cache"] for _ in range(2)] == ["MISS", "MISS"]


def test_a_request_with_the_auth_cookie_neither_reads_nor_writes_the_cache(cache, view, settings):
    factory.cookies[settings.AUTH_COOKIE_NAME] = "token-of-ada"
    try:
        answers = [get(cache)["X-Cache"] for _ in range(2)]
    finally:
        factory.cookies.clear()
    assert answers == ["BYPASS", "BYPASS"]
    assert get(cache)["X-Cache"] == "MISS"  # nothing was stored for the anonymous visitor
    get(cache)
    factory.cookies[settings.AUTH_COOKIE_NAME] = "token-of-ada"
    try:
        assert get(cache)["X-Cache"] == "BYPASS"  # ... and the anonymous page is not served
    finally:
        factory.cookies.clear()
    assert view.renders == 4


def test_a_visitor_with_a_pending_flash_message_gets_a_fresh_page(cache, view):
    get(cache)
    factory.cookies["messages"] = "pending"
    try:
        assert get(cache)["X-Cache"] == "BYPASS"
    finally:
        factory.cookies.clear()


def test_forms_and_other_pages_never_touch_redis(cache, view):
    assert get(cache, "/login")["X-Cache"] == "BYPASS"
    assert cache(factory.post("/"))["X-Cache"] == "BYPASS"
    assert get(cache, "/healthz").get("X-Cache") is None


def test_a_bumped_tag_makes_the_page_stale_at_once(cache, view):
    get(cache)
    tags.bump({"listings"})
    miss = get(cache)
    assert miss["X-Cache"] == "MISS" and miss.content == b"<p>render 2</p>"
    assert get(cache)["X-Cache"] == "HIT"


def test_a_bumped_tag_leaves_pages_with_other_tags_alone(page_cache):
    view = CountingView(tags="listing:1 seller:7 user:7")
    cache = PageCacheMiddleware(view)
    get(cache, "/listings/1")
    tags.bump({"listing:2", "seller:8"})
    assert get(cache, "/listings/1")["X-Cache"] == "HIT"
    tags.bump({"user:7"})
    assert get(cache, "/listings/1")["X-Cache"] == "MISS"


def test_the_epoch_tag_invalidates_every_page(cache, view):
    get(cache, "/")
    get(cache, "/search?q=desk")
    conn.execute(tags.bump_epoch)
    assert get(cache, "/")["X-Cache"] == "MISS"
    assert get(cache, "/search?q=desk")["X-Cache"] == "MISS"


def test_a_write_during_the_render_keeps_the_render_out_of_the_cache(cache, view):
    # The render read its data before the write; storing it under the new versions would
    # serve the old page after the write returned.
    view.during_render = lambda: tags.bump({"listings"})
    assert get(cache)["X-Cache"] == "MISS"
    view.during_render = None
    assert stats.process_counts()["refused"] == 1
    assert get(cache)["X-Cache"] == "MISS"
    assert get(cache)["X-Cache"] == "HIT"


def test_a_redis_restart_during_the_render_keeps_the_render_out(cache, view, page_cache):
    client = page_cache.client()
    client.set(tags.CLOCK, 1000)
    view.during_render = lambda: client.flushall()  # what a restart without persistence does
    get(cache)
    assert stats.process_counts()["refused"] == 1


def test_ttl_mode_ignores_tags(page_cache, settings):
    settings.CACHE_MODE = "ttl"
    view = CountingView()
    cache = PageCacheMiddleware(view)
    get(cache)
    tags.bump({"listings"})
    assert get(cache)["X-Cache"] == "HIT"
    assert view.renders == 1


def test_off_mode_renders_every_page_and_never_asks_redis(page_cache, settings):
    settings.CACHE_MODE = "off"
    page_cache.stop()
    view = CountingView()
    cache = PageCacheMiddleware(view)
    answers = [get(cache) for _ in range(2)]
    assert [answer["X-Cache"] for answer in answers] == ["BYPASS", "BYPASS"]
    assert answers[0]["Server-Timing"].startswith("app;dur=")
    assert view.renders == 2 and stats.process_counts()["redis_error"] == 0


def test_an_expired_page_is_re_rendered(cache, view, clock, settings):
    get(cache)
    clock.advance(settings.CACHE_TTL + 1)
    assert get(cache)["X-Cache"] == "MISS"
    assert get(cache)["X-Cache"] == "HIT"
    assert view.renders == 2


def test_uncacheable_pages_leave_a_pass_marker_and_skip_the_lock(page_cache):
    view = CountingView(status=404)
    cache = PageCacheMiddleware(view)
    get(cache, "/listings/9")
    key = page_key("invalidate", "/listings/9")
    assert page_cache.client().exists(store.pass_key(key))
    get(cache, "/listings/9")
    assert not page_cache.client().exists(store.lock_key(key))


# --- stampede -------------------------------------------------------------------------------

def concurrently(cache, n, path="/"):
    """n requests for `path` at the same moment, from n threads; their answers in order."""
    barrier = threading.Barrier(n)
    answers = [None] * n

    def one(index):
        barrier.wait(timeout=10)
        answers[index] = get(cache, path)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(answer is not None for answer in answers)
    return answers


def test_fifty_concurrent_requests_for_an_expired_page_cause_one_render(cache, view, clock,
                                                                        settings):
    get(cache)
    clock.advance(settings.CACHE_TTL + 1)
    served = threading.Semaphore(0)

    def hold_until_the_others_are_served():
        # the renderer finishes only after the 49 others got their answer: none of them waited
        for _ in range(49):
            assert served.acquire(timeout=10)

    view.during_render = hold_until_the_others_are_served
    original = cache.replay

    def replay_and_signal(found):
        response = original(found)
        served.release()
        return response

    cache.replay = replay_and_signal
    answers = concurrently(cache, 50)
    states = Counter(answer["X-Cache"] for answer in answers)
    assert view.renders == 2, states  # the first request, and exactly one re-render
    assert states == {"MISS": 1, "STALE": 49}
    assert {answer.content for answer in answers if answer["X-Cache"] == "STALE"} == {
        b"<p>render 1</p>"}
    assert get(cache)["X-Cache"] == "HIT" and get(cache).content == b"<p>render 2</p>"


def test_fifty_concurrent_requests_for_an_invalidated_page_cause_one_render_and_no_stale_copy(
        page_cache, settings):
    settings.PAGE_CACHE_WAIT = 10.0  # a loaded test machine may be slow to poll
    view = CountingView(delay=0.3)
    cache = PageCacheMiddleware(view)
    get(cache)
    tags.bump({"listings"})
    answers = concurrently(cache, 50)
    states = Counter(answer["X-Cache"] for answer in answers)
    assert view.renders == 2, states
    assert states == {"HIT": 49, "MISS": 1}
    assert {answer.content for answer in answers} == {b"<p>render 2</p>"}


def test_fifty_concurrent_first_requests_cause_one_render(page_cache, settings):
    settings.PAGE_CACHE_WAIT = 10.0
    view = CountingView(delay=0.3)
    cache = PageCacheMiddleware(view)
    answers = concurrently(cache, 50)
    states = Counter(answer["X-Cache"] for answer in answers)
    assert view.renders == 1, states
    assert states == {"HIT": 49, "MISS": 1}


def test_waiters_render_themselves_when_the_renderer_is_too_slow(page_cache, settings):
    settings.PAGE_CACHE_WAIT = 0.05
    view = CountingView(delay=0.5)
    cache = PageCacheMiddleware(view)
    answers = concurrently(cache, 3)
    assert view.renders == 3
    assert [answer["X-Cache"] for answer in answers] == ["MISS"] * 3


# --- Redis failing --------------------------------------------------------------------------

def test_with_redis_stopped_every_page_is_served_uncached_and_fast(view, page_cache, settings):
    settings.PAGE_CACHE_SOCKET_TIMEOUT = 0.1  # the production value
    cache = PageCacheMiddleware(view)
    get(cache)
    page_cache.stop()
    start = time.perf_counter()
    answers = [get(cache) for _ in range(20)]
    elapsed = time.perf_counter() - start
    assert {answer.status_code for answer in answers} == {200}
    assert {answer["X-Cache"] for answer in answers} == {"BYPASS"}
    assert view.renders == 21
    assert elapsed < 2.0  # a refused connection fails at once; the breaker skips the rest
    assert conn.breaker().is_open


def test_a_slow_redis_costs_at_most_a_few_short_timeouts(view, page_cache, settings):
    settings.PAGE_CACHE_SOCKET_TIMEOUT = 0.1  # the production value
    cache = PageCacheMiddleware(view)
    get(cache)
    page_cache.process.send_signal(19)  # SIGSTOP: Redis accepts nothing and answers nothing
    try:
        start = time.perf_counter()
        answers = [get(cache) for _ in range(20)]
        elapsed = time.perf_counter() - start
    finally:
        page_cache.process.send_signal(18)  # SIGCONT
    assert {answer["X-Cache"] for answer in answers} == {"BYPASS"}
    # Three 100 ms timeouts open the breaker and later requests skip Redis but for a probe
    # every cool-down (0.2 s here); without the breaker the 20 requests would take 2 s.
    assert conn.breaker().opened_count >= 1
    assert elapsed < 1.2


def test_caching_resumes_when_redis_returns(cache, view, page_cache):
    get(cache)
    page_cache.stop()
    for _ in range(3):
        get(cache)
    assert conn.breaker().is_open
    page_cache.start()  # empty: the test Redis has no persistence (a blip: the next test)
    deadline = time.monotonic() + 5
    while get(cache)["X-Cache"] == "BYPASS":
        assert time.monotonic() < deadline
        time.sleep(0.05)  # the breaker's cool-down, 0.2 s in tests
    assert get(cache)["X-Cache"] == "HIT"


def test_a_blip_keeps_old_entries_out_after_the_breaker_closes(cache, view, page_cache):
    client = page_cache.client()
    get(cache)
    stored_epoch = client.get(tags.key(tags.EPOCH))
    breaker = conn.breaker()
    for _ in range(breaker.failures):
        breaker.failure()
    breaker.opened_at -= 10  # the cool-down is over: the next call is the probe
    assert get(cache)["X-Cache"] == "MISS"
    assert client.get(tags.key(tags.EPOCH)) != stored_epoch


# --- counters -------------------------------------------------------------------------------

def test_counters_reach_redis_without_a_round_trip_of_their_own(cache, view, page_cache, settings):
    get(cache)
    get(cache)
    get(cache, "/login")
    middleware.flush()
    totals = stats.read(page_cache.client(), "invalidate")
    assert totals["miss"] == 1 and totals["hit"] == 1 and totals["bypass"] == 1
    assert totals["stored"] == 1
    per_instance = stats.read(page_cache.client(), "invalidate", settings.INSTANCE)
    assert per_instance["hit"] == 1


def test_counters_of_an_outage_are_kept_and_sent_later(cache, view, page_cache):
    page_cache.stop()
    for _ in range(5):
        get(cache)
    page_cache.start()
    conn.reset()
    middleware.flush()
    totals = stats.read(page_cache.client(), "invalidate")
    assert totals["bypass"] == 5 and totals["redis_error"] >= 1


def test_cache_stats_answers_this_process_and_all_instances(cache, view, page_cache):
    get(cache)
    get(cache)
    body = cache(factory.get("/cache/stats"))
    data = __import__("json").loads(body.content)
    assert data["mode"] == "invalidate" and data["breaker_open"] is False
    assert data["process"]["hit"] == 1
    assert data["totals"]["hit"] == 1 and data["totals"]["miss"] == 1
