"""The entity tier's listing API: CRUD, search, ordering, atomic view counts, bad input."""
from decimal import Decimal

import pytest

from entity.models import Listing
from tests.unit.json_api import error_of


@pytest.fixture
def seller(make_user):
    return make_user("sam")


def test_create_listing_returns_it_with_its_seller(entity_api, seller):
    response = entity_api.post("/listings", {"seller_id": seller.pk, "title": "Road bike",
                                             "description": "Fast.", "price": 250.5})
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["price"] == "250.50" and data["status"] == "active" and data["view_count"] == 0
    assert data["seller"] == {"id": seller.pk, "username": "sam", "display_name": "Sam"}
    assert Listing.objects.get(pk=data["id"]).price == Decimal("250.50")


@pytest.mark.parametrize("field, value", [
    ("price", -1), ("price", "1000000.01"), ("price", "12.345"), ("price", "twelve"),
    ("price", None), ("title", ""), ("title", "ab"), ("title", "x" * 121), ("title", 42),
    ("description", "y" * 5001), ("status", "stolen"), ("seller_id", "one"), ("seller_id", 0),
])
def test_create_listing_refuses_an_invalid_field(entity_api, seller, field, value):
    body = {"seller_id": seller.pk, "title": "Road bike", "price": "10", field: value}
    response = entity_api.post("/listings", body)
    assert response.status_code == 422
    assert field in error_of(response)["fields"]
    assert not Listing.objects.exists()


def test_create_listing_refuses_an_unknown_seller(entity_api):
    response = entity_api.post("/listings", {"seller_id": 999, "title": "Lamp", "price": "5"})
    assert response.status_code == 422
    assert error_of(response)["fields"] == {"seller_id": ["No such user."]}


def test_create_listing_refuses_malformed_json(entity_api):
    response = entity_api.post("/listings", raw='{"title": "Lamp",')
    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_request"


def test_create_listing_refuses_a_body_that_is_not_an_object(entity_api):
    response = entity_api.post("/listings", raw="[1, 2, 3]")
    assert response.status_code == 422


def test_create_listing_refuses_an_oversized_body(entity_api, seller):
    response = entity_api.post("/listings", {"seller_id": seller.pk, "title": "Lamp",
                                             "price": "5", "description": "z" * 70_000})
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert not Listing.objects.exists()


def test_update_listing_changes_only_the_fields_given(entity_api, make_listing):
    listing = make_listing(title="Old title", price="10.00")
    response = entity_api.patch(f"/listings/{listing.pk}", {"price": "8.5", "status": "sold"})
    assert response.status_code == 200
    listing.refresh_from_db()
    assert (listing.title, listing.price, listing.status) == ("Old title", Decimal("8.50"), "sold")


def test_update_listing_refuses_an_invalid_price_and_keeps_the_old_one(entity_api, make_listing):
    listing = make_listing(price="10.00")
    response = entity_api.patch(f"/listings/{listing.pk}", {"price": "-3"})
    assert response.status_code == 422
    listing.refresh_from_db()
    assert listing.price == Decimal("10.00")


def test_update_unknown_listing_is_a_404(entity_api):
    assert entity_api.patch("/listings/987654", {"title": "Nope"}).status_code == 404


def test_delete_listing_removes_it(entity_api, make_listing):
    listing = make_listing()
    assert entity_api.delete(f"/listings/{listing.pk}").status_code == 200
    assert not Listing.objects.exists()
    assert entity_api.delete(f"/listings/{listing.pk}").status_code == 404


def test_wrong_method_is_a_405_with_the_error_shape(entity_api, make_listing):
    response = entity_api.request("PUT", f"/listings/{make_listing().pk}", {"title": "Lamp"})
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_non_numeric_id_is_a_404_with_the_error_shape(entity_api):
    response = entity_api.get("/listings/abc")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_list_orders_newest_first_and_hides_sold_listings(entity_api, make_listing, seller):
    make_listing(title="First lamp", seller=seller)
    make_listing(title="Sold lamp", seller=seller, status="sold")
    make_listing(title="Second lamp", seller=seller)
    items = entity_api.get("/listings").json()["data"]["items"]
    assert [item["title"] for item in items] == ["Second lamp", "First lamp"]


def test_list_orders_by_popularity(entity_api, make_listing, seller):
    make_listing(title="Quiet one", seller=seller, view_count=1)
    make_listing(title="Popular one", seller=seller, view_count=50)
    items = entity_api.get("/listings?order=popular").json()["data"]["items"]
    assert items[0]["title"] == "Popular one"


def test_search_matches_every_word_in_title_or_description(entity_api, make_listing, seller):
    make_listing(title="Oak desk", description="Solid wood, drawers.", seller=seller)
    make_listing(title="Pine desk", description="Light and cheap.", seller=seller)
    make_listing(title="Oak shelf", description="Tall.", seller=seller)
    data = entity_api.get("/listings?q=oak+drawers").json()["data"]
    assert [item["title"] for item in data["items"]] == ["Oak desk"] and data["count"] == 1


def test_search_treats_sql_as_plain_text(entity_api, make_listing):
    make_listing(title="Lamp")
    response = entity_api.get("/listings?q=%27%20OR%201%3D1%20--")
    assert response.status_code == 200 and response.json()["data"]["count"] == 0
    assert Listing.objects.count() == 1


def test_list_filters_by_seller(entity_api, make_listing, make_user):
    mine, theirs = make_user("mine"), make_user("theirs")
    make_listing(seller=mine)
    make_listing(seller=theirs)
    items = entity_api.get(f"/listings?seller_id={mine.pk}").json()["data"]["items"]
    assert [item["seller"]["id"] for item in items] == [mine.pk]


def test_list_refuses_an_unknown_order(entity_api):
    response = entity_api.get("/listings?order=random")
    assert response.status_code == 422 and "order" in error_of(response)["fields"]


def test_recording_a_view_increments_the_count(entity_api, make_listing):
    listing = make_listing()
    entity_api.post(f"/listings/{listing.pk}/views")
    response = entity_api.post(f"/listings/{listing.pk}/views")
    assert response.json()["data"] == {"id": listing.pk, "view_count": 2}


def test_recording_a_view_of_an_unknown_listing_is_a_404(entity_api):
    assert entity_api.post("/listings/31337/views").status_code == 404
