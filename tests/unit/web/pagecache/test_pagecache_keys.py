"""Keys: the same page gets the same key whatever the order of its query parameters or the
parameters it ignores, and different pages get different keys."""
import pytest
from django.test import RequestFactory

from web.forms import PageForm, SearchForm
from web.pagecache import keys

factory = RequestFactory()


def key_of(url, mode="invalidate"):
    request = factory.get(url)
    name = keys.route(request)
    return keys.page_key(mode, keys.normalized_url(request, name)) if name else None


def test_only_the_browsing_pages_are_cacheable():
    assert keys.route(factory.get("/")) == "web:home"
    assert keys.route(factory.get("/listings/7")) == "web:listing"
    assert keys.route(factory.get("/sellers/7")) == "web:seller"
    assert keys.route(factory.get("/search")) == "web:search"
    for url in ("/login", "/signup", "/listings/new", "/logout", "/healthz", "/exp/v1/home",
                "/no/such/page"):
        assert keys.route(factory.get(url)) is None, url


def test_the_key_lists_the_parameters_the_views_read():
    # a view that starts reading a parameter must name it in keys.PARAMS (and here)
    assert set(keys.PARAMS["web:search"]) == set(SearchForm.base_fields)
    assert set(keys.PARAMS["web:seller"]) == set(PageForm.base_fields)


def test_keys_are_namespaced_by_version_and_mode():
    assert key_of("/") == "pc:v1:invalidate:GET:/"
    assert key_of("/", mode="ttl") == "pc:v1:ttl:GET:/"


@pytest.mark.parametrize("url", ["/search?q=desk&page=2", "/search?page=2&q=desk",
                                 "/search?utm_source=x&q=desk&page=2&fbclid=y",
                                 "/search?q=+desk+&page=2", "/search?q=lamp&q=desk&page=2"])
def test_search_keys_keep_q_and_page_in_a_stable_order(url):
    assert key_of(url) == "pc:v1:invalidate:GET:/search?page=2&q=desk"


def test_empty_parameters_are_the_same_as_none():
    assert key_of("/search?q=&page=") == key_of("/search")


def test_pages_that_read_no_parameter_ignore_them_all():
    assert key_of("/?page=3&q=x") == key_of("/") == "pc:v1:invalidate:GET:/"
    assert key_of("/listings/7?ref=mail") == "pc:v1:invalidate:GET:/listings/7"


def test_different_pages_have_different_keys():
    urls = ["/", "/listings/7", "/listings/8", "/sellers/7", "/sellers/7?page=2", "/search",
            "/search?q=desk", "/search?q=Desk"]
    assert len({key_of(url) for url in urls}) == len(urls)


def test_long_keys_are_hashed():
    long_query = "x" * 500
    key = key_of(f"/search?q={long_query}")
    assert len(key) < keys.MAX_KEY and key.startswith("pc:v1:invalidate:GET:#")
    assert key == key_of(f"/search?q={long_query}")
    assert key != key_of(f"/search?q={long_query}y")
