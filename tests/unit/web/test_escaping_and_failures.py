"""What people type is shown as text, never run as HTML; a dead experience tier gives the
503 page quickly, with no technical details."""
import time

from entity.models import Listing

SCRIPT = '<script>alert("pwned")</script><b onmouseover=alert(1)>bold</b>'


def test_html_in_a_listing_title_and_description_is_escaped(browser, make_listing, seller):
    listing = make_listing(seller=seller, title=SCRIPT, description=SCRIPT)
    for url in (f"/listings/{listing.id}", "/", f"/sellers/{seller.id}", "/search?q=alert"):
        page = browser.get(url).content.decode()
        assert "<script>alert" not in page, url
        assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page, url


def test_html_in_a_display_name_and_bio_is_escaped(browser, make_user, make_listing):
    evil = make_user("mallory", display_name="<img src=x onerror=alert(1)>", bio=SCRIPT)
    make_listing(seller=evil, title="Harmless lamp")
    for url in (f"/sellers/{evil.id}", "/"):
        page = browser.get(url).content.decode()
        assert "<img src=x" not in page and "<script>" not in page, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in page, url


def test_html_in_the_search_query_is_escaped(browser):
    page = browser.get("/search", {"q": '"><script>alert(1)</script>'}).content.decode()
    assert "<script>alert(1)" not in page
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_html_in_a_signup_username_is_escaped_when_the_form_comes_back(browser):
    page = browser.post("/signup", {"username": "<svg onload=alert(1)>"}).content.decode()
    assert "<svg onload" not in page


def test_experience_down_gives_the_503_page_within_a_second(browser, experience_down):
    started = time.monotonic()
    response = browser.get("/")
    assert time.monotonic() - started < 1
    assert response.status_code == 503
    assert response["Retry-After"]
    page = response.content.decode()
    assert "We'll be right back" in page
    assert "ConnectError" not in page and "Traceback" not in page


def test_experience_down_for_a_logged_in_visitor_still_gives_the_503_page(
        member, experience_down):
    response = member.get("/")
    assert response.status_code == 503
    assert "be right back" in response.content.decode()
    assert "auth" not in response.cookies  # the visitor stays logged in for later


def test_experience_down_when_posting_a_listing_gives_the_503_page(member, experience_down):
    response = member.post("/listings/new", {"title": "Teak bench", "price": "5"})
    assert response.status_code == 503
    assert not Listing.objects.exists()


def test_experience_down_at_log_in_gives_the_503_page(browser, experience_down):
    response = browser.post("/login", {"username": "ada", "password": "whatever it is"})
    assert response.status_code == 503


def test_logout_clears_the_cookie_even_when_experience_is_down(member, experience_down):
    response = member.post("/logout")
    assert response.status_code == 302
    assert response.cookies["auth"].value == ""
