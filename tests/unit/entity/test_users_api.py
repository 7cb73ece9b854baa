"""The entity tier's user API: create, read, update, delete, list, with bad input refused."""
from entity.models import Listing, User
from tests.unit.conftest import STRONG_PASSWORD
from tests.unit.json_api import error_of

NEW_USER = {"username": "bob_smith", "email": "bob@example.com", "password": STRONG_PASSWORD}


def test_create_user_stores_a_hashed_password_and_never_returns_it(entity_api):
    response = entity_api.post("/users", NEW_USER)
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["username"] == "bob_smith" and "password" not in data
    stored = User.objects.get(pk=data["id"])
    assert stored.password != STRONG_PASSWORD and stored.check_password(STRONG_PASSWORD)


def test_create_user_refuses_a_taken_username_whatever_its_case(entity_api, make_user):
    make_user("bob_smith")
    response = entity_api.post("/users", {**NEW_USER, "username": "BOB_smith"})
    assert response.status_code == 409
    assert error_of(response)["code"] == "username_taken"
    assert User.objects.count() == 1


def test_create_user_refuses_a_weak_password_with_reasons(entity_api):
    response = entity_api.post("/users", {**NEW_USER, "password": "12345678"})
    assert response.status_code == 422
    assert error_of(response)["fields"]["password"]
    assert not User.objects.exists()


def test_create_user_reports_each_missing_or_invalid_field(entity_api):
    response = entity_api.post("/users", {"username": "x!", "email": "not-an-email"})
    assert response.status_code == 422
    assert set(error_of(response)["fields"]) == {"username", "email", "password"}


def test_create_user_refuses_unknown_fields(entity_api):
    response = entity_api.post("/users", {**NEW_USER, "is_admin": True})
    assert response.status_code == 422
    assert "is_admin" in error_of(response)["fields"]


def test_get_user_returns_the_user(entity_api, make_user):
    user = make_user("carol")
    response = entity_api.get(f"/users/{user.pk}")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "data": {
        "id": user.pk, "username": "carol", "email": "carol@example.com",
        "display_name": "Carol", "bio": "", "date_joined": response.json()["data"]["date_joined"]}}


def test_get_unknown_user_is_a_404_with_the_error_shape(entity_api):
    response = entity_api.get("/users/424242")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_update_user_changes_only_the_fields_given(entity_api, make_user):
    user = make_user("dave", bio="old bio")
    response = entity_api.patch(f"/users/{user.pk}", {"display_name": "Dave D."})
    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.display_name, user.bio) == ("Dave D.", "old bio")


def test_update_user_rehashes_a_new_password(entity_api, make_user):
    user = make_user("erin")
    response = entity_api.patch(f"/users/{user.pk}", {"password": "another fine phrase 7"})
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.check_password("another fine phrase 7")


def test_update_user_refuses_a_wrong_type(entity_api, make_user):
    user = make_user("frank")
    response = entity_api.patch(f"/users/{user.pk}", {"bio": ["a", "list"]})
    assert response.status_code == 422
    assert "bio" in error_of(response)["fields"]


def test_delete_user_removes_the_user_and_their_listings(entity_api, make_listing, make_user):
    seller = make_user("gina")
    make_listing(seller=seller)
    response = entity_api.delete(f"/users/{seller.pk}")
    assert response.status_code == 200 and response.json()["data"] == {"deleted": seller.pk}
    assert not User.objects.filter(pk=seller.pk).exists()
    assert not Listing.objects.exists()


def test_list_users_is_paginated(entity_api, make_user):
    for name in ("ann", "ben", "cat"):
        make_user(name)
    data = entity_api.get("/users?limit=2&offset=1").json()["data"]
    assert data["count"] == 3 and data["limit"] == 2 and data["offset"] == 1
    assert [user["username"] for user in data["items"]] == ["ben", "cat"]


def test_list_users_refuses_an_out_of_range_limit(entity_api):
    response = entity_api.get("/users?limit=1000")
    assert response.status_code == 422
    assert "limit" in error_of(response)["fields"]
