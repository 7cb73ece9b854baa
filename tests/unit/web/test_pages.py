"""The browsing pages: home, listing, seller and search render what the experience tier
answers, and carry its cache tags."""
from entity.models import Listing


def test_home_page_lists_newest_listings(browser, seller, make_listing):
    for title in ("Red road bike", "Blue kettle", "Green armchair"):
        make_listing(seller=seller, title=title)
    response = browser.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Newest listings" in page
    for title in ("Red road bike", "Blue kettle", "Green armchair"):
        assert title in page
    # newest first
    assert page.index("Green armchair") < page.index("Blue kettle") < page.index("Red road bike")


def test_home_page_lists_most_popular_listings_with_view_counts(browser, seller, make_listing):
    make_listing(seller=seller, title="Ignored lamp")
    make_listing(seller=seller, title="Famous guitar", view_count=42)
    page = browser.get("/").content.decode()
    popular = page[page.index("Most popular"):]
    assert "Famous guitar" in popular
    assert "42 views" in popular


def test_home_page_with_no_listings_invites_the_first_one(browser):
    response = browser.get("/")
    assert response.status_code == 200
    assert "Nothing for sale yet" in response.content.decode()


def test_home_page_uses_the_site_stylesheet_and_no_external_resources(browser):
    page = browser.get("/").content.decode()
    assert "/static/web/site.css" in page
    assert "https://" not in page and "http://" not in page


def test_stylesheet_is_served_without_collectstatic(browser):
    response = browser.get("/static/web/site.css")
    assert response.status_code == 200
    assert b"--brand" in b"".join(response.streaming_content)


def test_listing_page_shows_title_price_description_seller_and_view_count(browser, listing):
    response = browser.get(f"/listings/{listing.id}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Walnut writing desk" in page
    assert "$1,234.50" in page
    assert "Solid walnut." in page and "Two drawers, one key." in page
    assert f'href="/sellers/{listing.seller_id}"' in page
    assert "Ada Lovelace" in page
    assert '<span class="views">1</span> view' in page  # this visit is counted


def test_listing_page_counts_each_view(browser, listing):
    browser.get(f"/listings/{listing.id}")
    browser.get(f"/listings/{listing.id}")
    assert Listing.objects.get(pk=listing.id).view_count == 2


def test_listing_page_shows_more_from_the_same_seller(browser, seller, listing, make_listing, make_user):
    other = make_listing(seller=seller, title="Brass desk lamp")
    stranger = make_listing(seller=make_user("bob"), title="Someone else's sofa")
    page = browser.get(f"/listings/{listing.id}").content.decode()
    more = page[page.index("More from Ada Lovelace"):]
    assert f"/listings/{other.id}" in more
    assert stranger.title not in page


def test_unknown_listing_shows_the_friendly_404_page(browser):
    response = browser.get("/listings/999999")
    assert response.status_code == 404
    page = response.content.decode()
    assert "We couldn" in page and "find that page" in page
    assert "Go to the home page" in page


def test_unknown_seller_shows_the_friendly_404_page(browser):
    response = browser.get("/sellers/999999")
    assert response.status_code == 404
    assert "find that page" in response.content.decode()


def test_unknown_address_shows_the_friendly_404_page(browser):
    response = browser.get("/no/such/page")
    assert response.status_code == 404
    assert "find that page" in response.content.decode()


def test_seller_page_shows_profile_and_listings(browser, seller, listing):
    response = browser.get(f"/sellers/{seller.id}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Ada Lovelace" in page and "@ada" in page
    assert "I sell engines and old desks." in page
    assert "Walnut writing desk" in page
    assert "1 listing for sale" in page


def test_seller_page_is_paginated(browser, seller, make_listing):
    for number in range(25):
        make_listing(seller=seller, title=f"Vinyl record {number:02d}")
    first = browser.get(f"/sellers/{seller.id}").content.decode()
    second = browser.get(f"/sellers/{seller.id}?page=2").content.decode()
    assert "Vinyl record 24" in first and "Vinyl record 00" not in first
    assert "Vinyl record 00" in second and "Vinyl record 24" not in second
    assert 'href="?page=2"' in first
    assert "Page 2 of 2" in second


def test_seller_page_treats_a_nonsense_page_number_as_the_first(browser, seller, listing):
    response = browser.get(f"/sellers/{seller.id}?page=banana")
    assert response.status_code == 200
    assert "Walnut writing desk" in response.content.decode()


def test_search_finds_listings_by_words_in_the_title(browser, seller, make_listing):
    make_listing(seller=seller, title="Mountain bike with disc brakes")
    make_listing(seller=seller, title="Cast iron pan")
    response = browser.get("/search", {"q": "bike"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Mountain bike with disc brakes" in page
    assert "Cast iron pan" not in page
    assert "1 listing found" in page
    assert 'value="bike"' in page  # the header's search box keeps the query


def test_search_that_finds_nothing_says_so(browser, seller, listing):
    response = browser.get("/search", {"q": "submarine"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing found for “submarine”" in page
    assert "Walnut writing desk" not in page


def test_search_results_are_paginated_and_keep_the_query(browser, seller, make_listing):
    for number in range(23):
        make_listing(seller=seller, title=f"Camera lens {number:02d}")
    page = browser.get("/search", {"q": "lens"}).content.decode()
    assert "23 listings found" in page
    assert 'href="?q=lens&amp;page=2"' in page
    second = browser.get("/search", {"q": "lens", "page": 2}).content.decode()
    assert "Camera lens 00" in second and "Camera lens 22" not in second


def test_search_without_words_lists_everything(browser, listing):
    page = browser.get("/search").content.decode()
    assert "All listings" in page and "Walnut writing desk" in page


def test_pages_copy_the_experience_cache_tags(browser, seller, listing):
    assert browser.get("/")["X-Cache-Tags"] == "listings"
    assert browser.get("/search", {"q": "desk"})["X-Cache-Tags"] == "listings"
    assert set(browser.get(f"/listings/{listing.id}")["X-Cache-Tags"].split()) == {
        f"listing:{listing.id}", f"user:{seller.id}", f"seller:{seller.id}"}
    assert set(browser.get(f"/sellers/{seller.id}")["X-Cache-Tags"].split()) == {
        f"user:{seller.id}", f"seller:{seller.id}"}


def test_anonymous_pages_set_no_cookie_and_stay_cacheable(browser, seller, listing):
    for url in ("/", f"/listings/{listing.id}", f"/sellers/{seller.id}", "/search?q=desk"):
        response = browser.get(url)
        assert response.status_code == 200
        assert not response.cookies, url
        assert "private" not in response.get("Cache-Control", ""), url
        assert "csrfmiddlewaretoken" not in response.content.decode(), url


def test_every_page_answers_503_with_a_friendly_page_when_experience_is_down(
        browser, experience_down):
    for url in ("/", "/listings/1", "/sellers/1", "/search?q=bike"):
        response = browser.get(url)
        assert response.status_code == 503, url
        page = response.content.decode()
        assert "be right back" in page, url
        assert "no-store" in response["Cache-Control"]


def test_page_links_repeat_only_the_query_the_page_understood(browser, seller, make_listing):
    # the page cache keys search pages by q and page only: links must not echo other params
    for number in range(23):
        make_listing(seller=seller, title=f"Camera lens {number:02d}")
    page = browser.get("/search", {"q": " lens ", "utm_source": "mail", "page": "1"}
                       ).content.decode()
    assert 'href="?q=lens&amp;page=2"' in page
    assert "utm_source" not in page
