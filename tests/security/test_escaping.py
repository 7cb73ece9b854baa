"""HTML and JavaScript typed by people reach every page escaped: listing titles and
descriptions, names and bios, the search box, the sign-up form sent back with its errors, and a
`next` address. The JSON tiers answer JSON that browsers will not sniff into HTML."""
import pytest
from django.test import Client

from lab.security import XSS_PROBES, unescaped

PAYLOADS = [*XSS_PROBES, "</textarea><script>alert(1)</script>", "<svg/onload=alert(1)>",
            "' onmouseover='alert(1)"]


@pytest.fixture(params=PAYLOADS)
def payload(request):
    return request.param


@pytest.fixture
def planted(make_user, make_listing, payload):
    """A seller and a listing carrying the payload in every free-text field they have."""
    seller = make_user("mallory", display_name=payload[:60], bio=payload)
    listing = make_listing(title=f"Lamp {payload}"[:120], description=payload, seller=seller)
    return seller, listing


def test_planted_html_is_escaped_on_every_page(planted, payload, member):
    seller, listing = planted
    pages = {path: Client().get(path) for path in (
        "/", f"/listings/{listing.pk}", f"/sellers/{seller.pk}", "/search?q=Lamp")}
    pages["/ (logged in)"] = member.get("/")
    for path, response in pages.items():
        assert response.status_code == 200, path
        assert not unescaped(response.content.decode(), payload), path


def test_typed_html_is_escaped_when_the_page_shows_it_back(in_process, payload):
    pages = {
        "search": Client().get("/search", {"q": payload}),
        "signup with errors": Client().post("/signup", {"username": payload, "email": payload,
                                                        "password": "x", "password_confirm": "y"}),
        "login with errors": Client().post("/login", {"username": payload, "password": "x"}),
        "login with a next address": Client().get("/login", {"next": payload}),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        assert not unescaped(response.content.decode(), payload), name


def test_a_javascript_next_address_is_never_followed(make_user):
    from tests.security.conftest import PASSWORD

    make_user("ada")
    response = Client().post("/login?next=javascript:alert(1)",
                             {"username": "ada", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"


def test_json_answers_carrying_html_are_json_and_never_sniffed(planted, payload):
    seller, listing = planted
    response = Client().get(f"/exp/v1/listings/{listing.pk}")
    assert response["Content-Type"].split(";")[0] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"
