"""The experience tier's screens, composed from the real entity tier (in-process)."""
import httpx
import pytest

from entity.models import Listing
from marketplace import upstream
from tests.unit.json_api import error_of


@pytest.fixture
def shop(make_user, make_listing):
    seller = make_user("sam")
    old = make_listing(title="Old armchair", seller=seller, view_count=90)
    new = make_listing(title="New lamp", seller=seller, view_count=1)
    other = make_listing(title="Other desk", seller=make_user("olga"), view_count=5)
    return {"seller": seller, "old": old, "new": new, "other": other}


def test_home_has_newest_and_most_popular_listings(experience_api, shop):
    response = experience_api.get("/home")
    data = response.json()["data"]
    assert [item["title"] for item in data["newest"]][:2] == ["Other desk", "New lamp"]
    assert data["popular"][0]["title"] == "Old armchair"
    assert response["X-Cache-Tags"] == "listings"


def test_listing_screen_records_a_view_and_shows_the_seller(experience_api, shop):
    listing = shop["old"]
    response = experience_api.get(f"/listings/{listing.pk}")
    data = response.json()["data"]
    assert data["listing"]["view_count"] == 91 and data["seller"]["username"] == "sam"
    assert [item["title"] for item in data["more_from_seller"]] == ["New lamp"]
    assert Listing.objects.get(pk=listing.pk).view_count == 91
    seller_id = shop["seller"].pk
    assert response["X-Cache-Tags"].split() == [f"listing:{listing.pk}", f"user:{seller_id}",
                                                 f"seller:{seller_id}"]


def test_listing_screen_of_an_unknown_listing_is_a_404(experience_api):
    response = experience_api.get("/listings/55555")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


def test_seller_screen_lists_their_listings_with_pages(experience_api, shop):
    data = experience_api.get(f"/sellers/{shop['seller'].pk}").json()["data"]
    assert data["seller"]["username"] == "sam" and data["count"] == 2
    assert (data["page"], data["pages"]) == (1, 1)


def test_seller_screen_of_an_unknown_seller_is_a_404(experience_api):
    assert experience_api.get("/sellers/4040").status_code == 404


def test_search_finds_listings_by_text(experience_api, shop):
    data = experience_api.get("/search?q=desk").json()["data"]
    assert data["query"] == "desk" and [item["title"] for item in data["results"]] == ["Other desk"]


def test_search_with_no_match_is_an_empty_page(experience_api, shop):
    data = experience_api.get("/search?q=submarine").json()["data"]
    assert data["results"] == [] and data["count"] == 0 and data["pages"] == 1


def test_search_is_paginated(experience_api, make_listing, make_user):
    seller = make_user("bulk")
    for number in range(25):
        make_listing(title=f"Chair number {number}", seller=seller)
    data = experience_api.get("/search?q=chair&page=2").json()["data"]
    assert (data["count"], data["pages"], data["page"], len(data["results"])) == (25, 2, 2, 5)


@pytest.mark.parametrize("query", ["page=0", "page=abc", "q=" + "x" * 101])
def test_search_refuses_bad_parameters(experience_api, query):
    response = experience_api.get(f"/search?{query}")
    assert response.status_code == 422


def test_an_unreachable_entity_tier_is_a_503_with_a_message(experience_api):
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    upstream.use_transport("entity", httpx.MockTransport(refuse))
    response = experience_api.get("/home")
    assert response.status_code == 503
    assert error_of(response)["code"] == "entity_unavailable"


def test_an_entity_tier_that_fails_is_a_503_not_a_500(experience_api):
    upstream.use_transport("entity", httpx.MockTransport(lambda request: httpx.Response(500)))
    response = experience_api.get("/search?q=lamp")
    assert response.status_code == 503


def test_experience_api_publishes_its_openapi_document(experience_api):
    document = experience_api.get("/openapi.json").json()
    assert {"/exp/v1/home", "/exp/v1/signup", "/exp/v1/listings"} <= set(document["paths"])
