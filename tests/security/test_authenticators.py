"""Authenticators (the log-in tokens): they expire, log out revokes them, and nothing but the
exact token works: not a forged one, not a tampered one, not the digest the database keeps."""
import string
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from entity.models import Authenticator, digest

AUTH = settings.AUTH_COOKIE_NAME


def me(token):
    return Client().get("/exp/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_a_fresh_token_works(make_user, issue_token):
    assert me(issue_token(make_user())).status_code == 200


def test_an_expired_token_is_refused_everywhere(make_user, issue_token):
    token = issue_token(make_user())
    Authenticator.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert me(token).status_code == 401
    browser = Client()
    browser.cookies[AUTH] = token
    response = browser.get("/listings/new")
    assert response.status_code == 302 and response["Location"].startswith("/login")
    assert response.cookies[AUTH].value == ""  # the stale cookie is deleted


def test_tokens_expire_after_the_configured_lifetime(make_user, issue_token):
    issue_token(make_user())
    authenticator = Authenticator.objects.get()
    lifetime = authenticator.expires_at - authenticator.created_at
    assert lifetime == timedelta(hours=settings.AUTHENTICATOR_LIFETIME_HOURS)


def test_logging_out_of_the_site_revokes_the_token(member):
    page = member.get("/").content.decode()
    assert "Log out" in page
    member.post("/logout")
    assert me(member.token).status_code == 401
    assert Authenticator.objects.get().revoked


def test_a_revoked_token_cannot_log_out_again_or_do_anything(member):
    Client().post("/exp/v1/logout", headers={"Authorization": f"Bearer {member.token}"})
    assert Client().post("/exp/v1/logout",
                         headers={"Authorization": f"Bearer {member.token}"}).status_code == 401
    created = Client().post("/exp/v1/listings", {"title": "Lamp", "price": "3"},
                            content_type="application/json",
                            headers={"Authorization": f"Bearer {member.token}"})
    assert created.status_code == 401


def test_only_the_digest_of_a_token_is_stored(make_user, issue_token):
    token = issue_token(make_user())
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM entity_authenticator")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert token not in stored and digest(token) in stored
    assert me(digest(token)).status_code == 401  # a leaked table gives no usable token


def test_every_single_character_change_of_a_token_is_refused(make_user, issue_token):
    token = issue_token(make_user())
    alphabet = string.ascii_letters + string.digits + "-_"
    for position in range(len(token)):
        other = alphabet[(alphabet.index(token[position]) + 1) % len(alphabet)]
        assert me(token[:position] + other + token[position + 1:]).status_code == 401
    for changed in (token[:-1], token + "A", token.upper(), token.lower(), f" {token}"):
        if changed != token:
            assert me(changed).status_code == 401, changed


@pytest.fixture
def ada_token(make_user, issue_token):
    return issue_token(make_user())


# one token for all examples (a function-scoped fixture, on purpose)
@hypothesis_settings(max_examples=60, deadline=None, database=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(forged=st.text(min_size=1, max_size=250).filter(lambda text: "\n" not in text
                                                       and "\r" not in text))
def test_a_forged_token_is_refused_and_never_fails(ada_token, forged):
    assume(forged.strip() != ada_token)
    assert me(forged).status_code == 401
