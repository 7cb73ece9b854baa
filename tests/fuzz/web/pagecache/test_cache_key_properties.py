"""Properties of the page cache's keys (web.pagecache.keys) for any query string: two requests
that get the same key are asked of the experience tier in the same way (so they show the same
page), normalizing is idempotent and ignores order and unknown parameters, and keys stay short.

The view's own reading of the request is observed, not re-implemented: the experience client
is replaced by a recorder, and the real view runs."""
from urllib.parse import urlencode

import pytest
from django.test import RequestFactory
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from marketplace.upstream import Reply
from tests.fuzz import harness
from web import experience, views
from web.pagecache import keys

factory = RequestFactory()
PROPERTIES = hypothesis_settings(max_examples=harness.PROPERTY_EXAMPLES, deadline=None,
                                 database=None, derandomize=True)

# Parameter names: the ones the views read, near misses, and tracking junk.
names = st.sampled_from(["q", "page", "Q", "q ", "PAGE", "utm_source", "fbclid", "ref", ""])
# Values: anything a URL can carry, with the interesting cases made likely.
values = st.one_of(
    st.text(max_size=120),
    st.sampled_from(["", " ", "2", " 2 ", "02", "2.0", "-1", "0", "10000", "10001", "٢", "1e3",
                     "desk", " desk ", "Desk", "a&b=c", "%20", "+", "\u00a0desk\u2003",
                     "x" * 101, "<script>", "'; DROP TABLE entity_listing; --"]),
)
pairs = st.lists(st.tuples(names, values), max_size=6)


def request_for(path, query_pairs):
    return factory.get(f"{path}?{urlencode(query_pairs)}" if query_pairs else path)


def key_of(request):
    name = keys.route(request)
    return keys.page_key("invalidate", keys.normalized_url(request, name))


class Recorder:
    """Stands in for the experience tier: remembers what a view asked for."""

    def __init__(self):
        self.calls = []

    def search(self, q="", page=1):
        self.calls.append(("search", q, page))
        return Reply(200, {"query": q, "results": [], "count": 0, "page": page, "pages": 1,
                           "per_page": 20}, {"X-Cache-Tags": "listings"})

    def seller(self, seller_id, page=1):
        self.calls.append(("seller", seller_id, page))
        return Reply(200, {"seller": {"id": seller_id, "username": "ada", "display_name": "Ada",
                                      "bio": "", "email": "a@example.com",
                                      "date_joined": "2024-01-01T00:00:00Z"},
                           "listings": [], "count": 0, "page": page, "pages": 1},
                     {"X-Cache-Tags": f"seller:{seller_id}"})


@pytest.fixture(scope="module")
def recorder():
    patch = pytest.MonkeyPatch()
    fake = Recorder()
    patch.setattr(experience, "search", fake.search)
    patch.setattr(experience, "seller", fake.seller)
    yield fake
    patch.undo()


def asked(recorder, view, request, *args):
    recorder.calls.clear()
    request.COOKIES = {}
    response = view(request, *args)
    assert response.status_code == 200
    return recorder.calls[-1]


@PROPERTIES
@given(query=pairs)
def test_search_pages_with_the_same_key_ask_the_same_question(recorder, query):
    original = request_for("/search", query)
    normalized = factory.get(keys.normalized_url(original, "web:search"))
    assert key_of(normalized) == key_of(original)
    assert asked(recorder, views.search, original) == asked(recorder, views.search, normalized)


@PROPERTIES
@given(query=pairs, seller_id=st.integers(1, 10**6))
def test_seller_pages_with_the_same_key_ask_the_same_question(recorder, query, seller_id):
    path = f"/sellers/{seller_id}"
    original = request_for(path, query)
    normalized = factory.get(keys.normalized_url(original, "web:seller"))
    assert key_of(normalized) == key_of(original)
    assert (asked(recorder, views.seller, original, seller_id)
            == asked(recorder, views.seller, normalized, seller_id))


@PROPERTIES
@given(query=pairs)
def test_normalizing_twice_changes_nothing(query):
    once = keys.normalized_url(request_for("/search", query), "web:search")
    assert keys.normalized_url(factory.get(once), "web:search") == once


@PROPERTIES
@given(query=pairs, junk=st.lists(st.tuples(st.sampled_from(["utm_source", "fbclid", "x"]),
                                             values), max_size=3), data=st.data())
def test_order_and_unknown_parameters_do_not_change_the_key(query, junk, data):
    # Shuffle while keeping the order of values of the same name (the last one counts).
    mixed = data.draw(st.permutations(query + junk))
    by_name = {}
    for name, value in query + junk:
        by_name.setdefault(name, []).append(value)
    reordered = []
    for name, _ in mixed:
        reordered.append((name, by_name[name].pop(0)))
    assert key_of(request_for("/search", reordered)) == key_of(request_for("/search", query))


@PROPERTIES
@given(first=pairs, second=pairs)
def test_different_questions_get_different_keys(recorder, first, second):
    one, other = request_for("/search", first), request_for("/search", second)
    if asked(recorder, views.search, one) != asked(recorder, views.search, other):
        assert key_of(one) != key_of(other)


@PROPERTIES
@given(query=pairs)
def test_keys_stay_short_whatever_the_url(query):
    key = key_of(request_for("/search", query))
    assert len(key) <= keys.MAX_KEY


@PROPERTIES
@given(path=st.text(max_size=60))
def test_only_the_four_browsing_pages_are_ever_cacheable(path):
    request = factory.get("/" + path.lstrip("/"))
    assert keys.route(request) in (None, *keys.PARAMS)
