"""Selling something: /listings/new is for logged-in visitors only and validates what they
type before anything is saved."""
import pytest
from django.test import Client

from entity.models import Listing

GOOD = {"title": "Teak garden bench", "price": "85.50",
        "description": "Seats three. Pick up only."}


def form(**changes):
    return {**GOOD, **changes}


def test_anonymous_visitor_is_sent_to_log_in_and_back(browser):
    response = browser.get("/listings/new")
    assert response.status_code == 302
    assert response["Location"] == "/login?next=/listings/new"


def test_anonymous_post_saves_nothing_and_is_sent_to_log_in(browser):
    response = browser.post("/listings/new", GOOD)
    assert response["Location"] == "/login?next=/listings/new"
    assert not Listing.objects.exists()


def test_new_listing_page_shows_the_form_to_a_member(member):
    response = member.get("/listings/new")
    assert response.status_code == 200
    page = response.content.decode()
    for name in ("title", "price", "description"):
        assert f'name="{name}"' in page
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_a_valid_listing_is_created_and_shown_with_a_flash(member, seller):
    response = member.post("/listings/new", GOOD, follow=True)
    created = Listing.objects.get()
    assert response.redirect_chain == [(f"/listings/{created.id}", 302)]
    assert created.seller == seller
    assert str(created.price) == "85.50"
    page = response.content.decode()
    assert "Listing created." in page
    assert "Teak garden bench" in page and "$85.50" in page


@pytest.mark.parametrize("changes, message", [
    ({"title": ""}, "This field is required."),
    ({"title": "ab"}, "Ensure this value has at least 3 characters (it has 2)."),
    ({"title": "x" * 121}, "Ensure this value has at most 120 characters (it has 121)."),
    ({"price": "-1"}, "Ensure this value is greater than or equal to 0."),
    ({"price": "ten dollars"}, "Enter a price as a number, like 25 or 19.99."),
    ({"price": "1000000.01"}, "Ensure this value is less than or equal to 1000000."),
    ({"price": "9.999"}, "Ensure that there are no more than 2 decimal places."),
    ({"price": ""}, "This field is required."),
    ({"description": "y" * 5001}, "Ensure this value has at most 5000 characters (it has 5001)."),
], ids=["empty title", "short title", "long title", "negative price", "non-numeric price",
        "price too high", "three decimals", "no price", "long description"])
def test_invalid_listing_shows_the_error_and_saves_nothing(member, changes, message):
    response = member.post("/listings/new", form(**changes))
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page
    assert 'class="field has-error"' in page
    assert Listing.objects.count() == 0


def test_invalid_listing_form_keeps_what_was_typed(member):
    page = member.post("/listings/new", form(price="-5")).content.decode()
    assert 'value="Teak garden bench"' in page
    assert "Seats three. Pick up only." in page


def test_a_price_at_the_limits_is_accepted(member):
    member.post("/listings/new", form(price="0"))
    member.post("/listings/new", form(price="1000000"))
    assert sorted(str(p) for p in Listing.objects.values_list("price", flat=True)) == [
        "0.00", "1000000.00"]


def test_new_listing_needs_the_csrf_token(seller, log_in):
    strict = Client(enforce_csrf_checks=True)
    log_in(strict, seller)
    assert strict.post("/listings/new", GOOD).status_code == 403
    assert not Listing.objects.exists()
    token = strict.get("/listings/new").context["csrf_token"]
    assert strict.post("/listings/new", {**GOOD, "csrfmiddlewaretoken": str(token)}
                       ).status_code == 302
    assert Listing.objects.count() == 1


def test_an_authenticator_revoked_meanwhile_sends_the_seller_to_log_in(member):
    from entity.models import Authenticator

    member.get("/listings/new")
    Authenticator.objects.update(revoked_at="2026-01-01T00:00:00Z")
    response = member.post("/listings/new", GOOD)
    assert response["Location"] == "/login?next=/listings/new"
    assert not Listing.objects.exists()
