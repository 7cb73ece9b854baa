"""Signing up, logging in and out, and creating listings through the experience tier."""
import pytest

from entity.models import Authenticator, Listing, User
from tests.unit.conftest import STRONG_PASSWORD
from tests.unit.json_api import error_of

SIGNUP = {"username": "newbie", "email": "newbie@example.com", "password": STRONG_PASSWORD,
          "password_confirm": STRONG_PASSWORD}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token(experience_api, make_user):
    make_user("alice")
    response = experience_api.post("/login", {"username": "alice", "password": STRONG_PASSWORD})
    return response.json()["data"]["token"]


def test_sign_up_creates_the_user_and_logs_them_in(experience_api):
    response = experience_api.post("/signup", SIGNUP)
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["user"]["username"] == "newbie" and data["token"] and data["expires_at"]
    assert User.objects.filter(username="newbie").exists()


def test_sign_up_with_mismatched_passwords_is_refused(experience_api):
    response = experience_api.post("/signup", {**SIGNUP, "password_confirm": "something else"})
    assert response.status_code == 422
    assert "password_confirm" in error_of(response)["fields"]
    assert not User.objects.exists()


def test_sign_up_with_a_weak_password_explains_why(experience_api):
    response = experience_api.post("/signup", {**SIGNUP, "password": "password",
                                               "password_confirm": "password"})
    assert response.status_code == 422
    assert any("common" in message for message in error_of(response)["fields"]["password"])


def test_sign_up_with_a_taken_username_is_a_conflict(experience_api, make_user):
    make_user("newbie")
    response = experience_api.post("/signup", SIGNUP)
    assert response.status_code == 409 and error_of(response)["code"] == "username_taken"


def test_sign_up_with_missing_fields_names_them(experience_api):
    response = experience_api.post("/signup", {"username": "newbie"})
    assert response.status_code == 422
    assert {"email", "password", "password_confirm"} <= set(error_of(response)["fields"])


def test_log_in_with_a_wrong_password_is_refused(experience_api, make_user):
    make_user("alice")
    response = experience_api.post("/login", {"username": "alice", "password": "wrong"})
    assert response.status_code == 401 and error_of(response)["code"] == "bad_credentials"


def test_me_names_the_user_of_the_token(experience_api, token):
    response = experience_api.get("/me", headers=bearer(token))
    assert response.json()["data"]["user"]["username"] == "alice"


def test_me_without_a_token_is_unauthorized(experience_api):
    assert experience_api.get("/me").status_code == 401


def test_log_out_revokes_the_token(experience_api, token):
    assert experience_api.post("/logout", headers=bearer(token)).status_code == 200
    assert experience_api.get("/me", headers=bearer(token)).status_code == 401
    assert Authenticator.objects.get().revoked


def test_create_listing_as_the_logged_in_user(experience_api, token):
    response = experience_api.post("/listings", {"title": "Blue kayak", "price": "99.5"},
                                   headers=bearer(token))
    assert response.status_code == 201
    listing = Listing.objects.get()
    assert listing.seller.username == "alice" and str(listing.price) == "99.50"


def test_create_listing_requires_an_authenticator(experience_api):
    response = experience_api.post("/listings", {"title": "Blue kayak", "price": "99.5"})
    assert response.status_code == 401
    assert not Listing.objects.exists()


def test_create_listing_with_a_revoked_authenticator_is_refused(experience_api, token):
    experience_api.post("/logout", headers=bearer(token))
    response = experience_api.post("/listings", {"title": "Blue kayak", "price": "99.5"},
                                   headers=bearer(token))
    assert response.status_code == 401
    assert not Listing.objects.exists()


@pytest.mark.parametrize("body, field", [
    ({"title": "", "price": "5"}, "title"),
    ({"title": "Lamp", "price": "-5"}, "price"),
    ({"title": "Lamp", "price": "five"}, "price"),
    ({"title": "Lamp", "price": "5", "description": "d" * 5001}, "description"),
    ({"price": "5"}, "title"),
])
def test_create_listing_with_bad_input_saves_nothing(experience_api, token, body, field):
    response = experience_api.post("/listings", body, headers=bearer(token))
    assert response.status_code == 422 and field in error_of(response)["fields"]
    assert not Listing.objects.exists()


def test_create_listing_refuses_malformed_json(experience_api, token):
    response = experience_api.post("/listings", raw="{oops", headers=bearer(token))
    assert response.status_code == 400


def test_log_in_and_sign_up_wait_longer_than_page_loads_for_the_password_hash(settings):
    # the hash is deliberately slow; a timed-out sign-up would leave an account behind
    assert settings.UPSTREAM_SLOW_READ_TIMEOUT > settings.UPSTREAM_READ_TIMEOUT
    assert settings.UPSTREAM_SLOW_READ_TIMEOUT < 15  # HAProxy's `timeout server`
