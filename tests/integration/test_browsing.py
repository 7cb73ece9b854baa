"""A visitor browses: the home page, a listing, its seller, and search."""
import pytest

from tests.integration.pages import ErrorPage

pytestmark = [pytest.mark.browser, pytest.mark.stack]


@pytest.mark.smoke
def test_visitor_opens_a_listing_from_the_home_page(site):
    home = site.open_home()
    assert len(home.newest_titles) == 12
    assert home.popular_titles, "the most popular listings are shown beside the newest"
    assert home.logged_in_as is None
    home.screenshot("home", "The home page: the newest listings and the most popular ones.")

    newest = home.newest_titles[0]
    listing = home.open_listing(newest)

    assert listing.title == newest
    assert listing.path == f"/listings/{listing.listing_id}"
    assert listing.price.startswith("$")
    listing.screenshot("listing", "A listing: title, price, description and its seller.")


def test_visitor_goes_from_a_listing_to_its_seller(site):
    listing = site.open_home().open_listing()
    title, seller_name = listing.title, listing.seller_name

    seller = listing.open_seller()

    assert seller.seller_name == seller_name
    assert title in seller.listing_titles
    seller.screenshot("seller", "A seller's page: their profile and everything they sell.")


@pytest.mark.smoke
def test_search_finds_a_listing_by_a_word_of_its_title(site):
    title = site.open_home().newest_titles[0]
    word = max(title.split(), key=len)  # the most telling word, e.g. "turntable"

    results = site.open_home().search(word)

    assert results.heading == f"Results for “{word}”"
    assert title in results.result_titles
    assert "found" in results.summary
    assert results.open_result(title).title == title
    site.open_search(word).screenshot(
        "search-results", f"Search results for “{word}”, found in titles and descriptions.")


def test_search_for_something_nobody_sells_says_nothing_was_found(site, unique):
    results = site.open_home().search(unique)

    assert results.says_nothing_found
    assert results.result_titles == []
    assert unique in results.heading
    results.screenshot("search-nothing-found",
                       "A search that finds nothing says so and suggests what to try.")


def test_an_unknown_listing_shows_the_friendly_not_found_page(site):
    page = site.open_listing(999_999_999, expect=ErrorPage)

    assert page.status == "404"
    assert site.last_response.status == 404
