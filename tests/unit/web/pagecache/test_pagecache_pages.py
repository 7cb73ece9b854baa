"""The page cache end to end: the real web views, experience and entity code in this process,
a real Redis, and writes through the JSON APIs as the site makes them. A transactional
database, so that writes really commit and their invalidations run as in production."""
import pytest
from django.conf import settings
from django.test import Client

from entity.models import Authenticator, Listing
from web.pagecache import conn, tags

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cached(page_cache):
    """Invalidate mode on the test Redis; the value is the RedisServer."""
    return page_cache


def bearer(user):
    _, token = Authenticator.issue(user)
    return {"Authorization": f"Bearer {token}"}


def logged_in(user):
    browser = Client()
    _, token = Authenticator.issue(user)
    browser.cookies[settings.AUTH_COOKIE_NAME] = token
    return browser


def test_home_page_is_a_miss_then_a_hit_with_the_same_page(cached, anonymous, listing):
    first, second = anonymous.get("/"), anonymous.get("/")
    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
    assert first.content == second.content
    assert "Walnut writing desk" in second.content.decode()


def test_every_browsing_page_is_cached(cached, anonymous, seller, listing):
    for url in ("/", f"/listings/{listing.id}", f"/sellers/{seller.id}", "/search?q=desk"):
        assert anonymous.get(url)["X-Cache"] == "MISS", url
        assert anonymous.get(url)["X-Cache"] == "HIT", url


def test_a_created_listing_is_on_the_home_page_on_the_very_next_request(
        cached, anonymous, seller, listing, experience_api):
    anonymous.get("/")
    assert anonymous.get("/")["X-Cache"] == "HIT"
    created = experience_api.post("/listings", {"title": "Cherry bookshelf",
                                                "description": "Five shelves.",
                                                "price": "80.00"}, headers=bearer(seller))
    assert created.status_code == 201
    home = anonymous.get("/")
    assert home["X-Cache"] == "MISS"
    assert "Cherry bookshelf" in home.content.decode()


def test_a_created_listing_is_in_search_results_and_on_its_sellers_page_at_once(
        cached, anonymous, seller, listing, experience_api):
    for url in ("/search?q=desk", f"/sellers/{seller.id}"):
        anonymous.get(url)
    experience_api.post("/listings", {"title": "Standing desk", "description": "Electric.",
                                      "price": "300.00"}, headers=bearer(seller))
    for url in ("/search?q=desk", f"/sellers/{seller.id}"):
        assert "Standing desk" in anonymous.get(url).content.decode(), url


def test_an_edited_listings_page_shows_the_edit(cached, anonymous, listing, entity_api):
    url = f"/listings/{listing.id}"
    anonymous.get(url)
    assert anonymous.get(url)["X-Cache"] == "HIT"
    edited = entity_api.patch(f"/listings/{listing.id}", {"title": "Walnut desk, price cut",
                                                           "price": "999.00"})
    assert edited.status_code == 200
    page = anonymous.get(url)
    assert page["X-Cache"] == "MISS"
    assert "Walnut desk, price cut" in page.content.decode() and "$999.00" in page.content.decode()


def test_a_sellers_new_name_shows_on_their_listings_page(cached, anonymous, seller, listing,
                                                          entity_api):
    url = f"/listings/{listing.id}"
    anonymous.get(url)
    entity_api.patch(f"/users/{seller.id}", {"display_name": "Countess Lovelace"})
    assert "Countess Lovelace" in anonymous.get(url).content.decode()


def test_a_deleted_listing_is_gone_from_its_page_and_the_home_page(cached, anonymous, listing,
                                                                   entity_api):
    anonymous.get("/")
    anonymous.get(f"/listings/{listing.id}")
    assert entity_api.delete(f"/listings/{listing.id}").status_code == 200
    assert anonymous.get(f"/listings/{listing.id}").status_code == 404
    assert "Walnut writing desk" not in anonymous.get("/").content.decode()


def test_a_write_from_a_management_command_or_the_shell_invalidates_too(cached, anonymous,
                                                                        listing):
    anonymous.get("/")
    Listing.objects.filter(pk=listing.pk).get().delete()  # no API involved
    assert "Walnut writing desk" not in anonymous.get("/").content.decode()


def test_a_logged_in_page_is_never_served_to_an_anonymous_visitor(cached, anonymous, seller,
                                                                 listing):
    ada = logged_in(seller)
    mine = ada.get("/")
    assert mine["X-Cache"] == "BYPASS" and "private" in mine["Cache-Control"]
    assert "Hi, Ada Lovelace" in mine.content.decode()
    for _ in range(2):
        page = anonymous.get("/")
        assert "Hi, Ada" not in page.content.decode() and "Log in" in page.content.decode()
    assert page["X-Cache"] == "HIT"


def test_a_logged_in_visitor_never_gets_the_anonymous_page_or_another_users(
        cached, anonymous, seller, listing, make_user):
    anonymous.get("/")
    anonymous.get("/")  # the anonymous home page is cached now
    bob = logged_in(make_user("bob", display_name="Bob Builder"))
    ada = logged_in(seller)
    bobs, adas = bob.get("/"), ada.get("/")
    assert (bobs["X-Cache"], adas["X-Cache"]) == ("BYPASS", "BYPASS")
    assert "Hi, Bob Builder" in bobs.content.decode()
    assert "Hi, Ada Lovelace" in adas.content.decode() and "Bob" not in adas.content.decode()


def test_a_page_showing_a_flash_message_is_for_its_visitor_only(cached, anonymous, listing):
    leaving = logged_in(listing.seller)
    leaving.post("/logout")  # the next page shows "Logged out" from a messages cookie
    farewell = leaving.get("/")
    assert "Logged out" in farewell.content.decode() and farewell["X-Cache"] == "BYPASS"
    for _ in range(2):
        assert "Logged out" not in anonymous.get("/").content.decode()


def test_responses_that_set_cookies_are_not_stored(cached, anonymous):
    for _ in range(2):
        login = anonymous.get("/login")
        assert login.cookies and login["X-Cache"] == "BYPASS"
    keys = [key for key in cached.client().scan_iter("pc:v1:invalidate:GET:*")
            if not key.endswith((b":lock", b":pass"))]
    assert keys == []


def test_with_redis_stopped_every_page_still_returns_200(cached, anonymous, seller, listing,
                                                        experience_api):
    anonymous.get("/")
    cached.stop()
    for url in ("/", f"/listings/{listing.id}", f"/sellers/{seller.id}", "/search?q=desk",
                "/login", "/signup"):
        response = anonymous.get(url)
        assert response.status_code == 200, url
        assert response["X-Cache"] == "BYPASS", url
    # writes keep working too, and their pages show them
    created = experience_api.post("/listings", {"title": "Teak sideboard", "description": "",
                                                "price": "450.00"}, headers=bearer(seller))
    assert created.status_code == 201
    assert "Teak sideboard" in anonymous.get("/").content.decode()


def test_caching_resumes_after_redis_comes_back(cached, anonymous, listing):
    cached.stop()
    assert anonymous.get("/")["X-Cache"] == "BYPASS"
    cached.start()
    conn.reset()  # as after the breaker's cool-down
    assert [anonymous.get("/")["X-Cache"] for _ in range(2)] == ["MISS", "HIT"]


def test_pages_for_one_write_become_stale_together_and_others_stay(cached, anonymous, seller,
                                                                   make_user, make_listing,
                                                                   entity_api):
    other = make_listing(seller=make_user("bob"), title="Blue kettle")
    mine = make_listing(seller=seller, title="Oak desk")
    for url in (f"/listings/{other.id}", f"/listings/{mine.id}"):
        anonymous.get(url)
    entity_api.patch(f"/listings/{mine.id}", {"title": "Oak desk (sold soon)"})
    assert anonymous.get(f"/listings/{other.id}")["X-Cache"] == "HIT"
    assert anonymous.get(f"/listings/{mine.id}")["X-Cache"] == "MISS"
    assert int(cached.client().get(tags.key(f"listing:{mine.id}"))) > 0


def test_a_write_right_after_redis_dropped_every_connection_still_invalidates(
        cached, anonymous, seller, make_listing, entity_api):
    # A Redis restart leaves every pooled connection broken; the first bump on one must not
    # be lost (the page would stay stale until the epoch retry, ~50 ms later)
    from entity import invalidation

    mine = make_listing(seller=seller, title="Oak desk")
    url = f"/listings/{mine.id}"
    anonymous.get(url)
    assert anonymous.get(url)["X-Cache"] == "HIT"
    cached.client().client_kill_filter(_type="normal", skipme=True)
    entity_api.patch(f"/listings/{mine.id}", {"title": "Oak desk, refinished"})
    assert invalidation.lost_bumps() == 0
    assert "Oak desk, refinished" in anonymous.get(url).content.decode()
