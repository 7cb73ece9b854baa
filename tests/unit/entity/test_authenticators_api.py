"""Authenticators: issued on log-in, stored only as a digest, verified, expired and revoked."""
from datetime import timedelta

from django.utils import timezone

from entity.models import Authenticator, digest
from tests.unit.conftest import STRONG_PASSWORD
from tests.unit.json_api import error_of


def log_in(entity_api, username="alice", password=STRONG_PASSWORD):
    return entity_api.post("/authenticators", {"username": username, "password": password})


def test_log_in_issues_a_256_bit_token_stored_only_as_a_digest(entity_api, make_user):
    make_user("alice")
    response = log_in(entity_api)
    assert response.status_code == 201
    token = response.json()["data"]["token"]
    assert len(token) >= 43  # 32 random bytes in URL-safe base64
    stored = Authenticator.objects.get()
    assert stored.token_digest == digest(token) and token not in stored.token_digest


def test_log_in_with_a_wrong_password_is_refused(entity_api, make_user):
    make_user("alice")
    response = log_in(entity_api, password="not the password")
    assert response.status_code == 401 and error_of(response)["code"] == "bad_credentials"
    assert not Authenticator.objects.exists()


def test_log_in_as_an_unknown_user_is_refused_the_same_way(entity_api):
    response = log_in(entity_api, username="nobody")
    assert response.status_code == 401 and error_of(response)["code"] == "bad_credentials"


def test_verify_returns_the_owner_of_a_valid_token(entity_api, make_user):
    user = make_user("alice")
    token = log_in(entity_api).json()["data"]["token"]
    response = entity_api.post("/authenticators/verify", {"token": token})
    assert response.status_code == 200 and response.json()["data"]["user"]["id"] == user.pk


def test_verify_refuses_a_tampered_token(entity_api, make_user):
    make_user("alice")
    token = log_in(entity_api).json()["data"]["token"]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = entity_api.post("/authenticators/verify", {"token": tampered})
    assert response.status_code == 401 and error_of(response)["code"] == "invalid_token"


def test_verify_refuses_an_expired_token(entity_api, make_user):
    make_user("alice")
    token = log_in(entity_api).json()["data"]["token"]
    Authenticator.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert entity_api.post("/authenticators/verify", {"token": token}).status_code == 401


def test_revoke_makes_the_token_useless(entity_api, make_user):
    make_user("alice")
    token = log_in(entity_api).json()["data"]["token"]
    assert entity_api.post("/authenticators/revoke", {"token": token}).status_code == 200
    assert entity_api.post("/authenticators/verify", {"token": token}).status_code == 401
    assert Authenticator.objects.get().revoked


def test_authenticators_are_listed_per_user_without_tokens(entity_api, make_user):
    user = make_user("alice")
    log_in(entity_api)
    data = entity_api.get(f"/authenticators?user_id={user.pk}").json()["data"]
    assert data["count"] == 1 and "token" not in data["items"][0]
    assert "token_digest" not in data["items"][0]


def test_delete_authenticator_removes_it(entity_api, make_user):
    make_user("alice")
    log_in(entity_api)
    authenticator = Authenticator.objects.get()
    assert entity_api.delete(f"/authenticators/{authenticator.pk}").status_code == 200
    assert entity_api.get(f"/authenticators/{authenticator.pk}").status_code == 404
