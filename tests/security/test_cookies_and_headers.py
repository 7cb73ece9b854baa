"""Cookies and response headers: every cookie the site sets is HttpOnly and SameSite=Lax (and
Secure behind TLS), the log-in cookie lives no longer than its authenticator, pages refuse to be
framed or sniffed, and errors never show Django's debug page."""
import pytest
from django.conf import settings
from django.test import Client

from tests.security.conftest import PASSWORD

AUTH = settings.AUTH_COOKIE_NAME


def every_cookie_of_a_visit(make_user):
    """The cookies set while visiting, logging in (with a flash message) and logging out."""
    make_user("ada")
    browser, seen = Client(), {}
    steps = [browser.get("/login"),
             browser.post("/login", {"username": "ada", "password": PASSWORD}),
             browser.get("/"),
             browser.post("/logout")]
    for response in steps:
        for name, morsel in response.cookies.items():
            if morsel.value:  # a deletion is not a cookie kept by the browser
                seen[name] = morsel
    return seen


def test_the_site_sets_the_csrf_auth_and_message_cookies(make_user):
    assert set(every_cookie_of_a_visit(make_user)) == {settings.CSRF_COOKIE_NAME, AUTH,
                                                       "messages"}


def test_every_cookie_is_httponly_and_samesite_lax(make_user):
    for name, morsel in every_cookie_of_a_visit(make_user).items():
        assert morsel["httponly"] is True, name
        assert morsel["samesite"] == "Lax", name
        assert morsel["path"] == "/", name


def test_every_cookie_is_secure_behind_tls(make_user, settings):
    settings.AUTH_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SESSION_COOKIE_SECURE = True  # the message cookie follows the session settings
    for name, morsel in every_cookie_of_a_visit(make_user).items():
        assert morsel["secure"] is True, name


def test_the_log_in_cookie_lives_no_longer_than_its_authenticator(make_user):
    make_user("ada")
    response = Client().post("/login", {"username": "ada", "password": PASSWORD})
    max_age = int(response.cookies[AUTH]["max-age"])
    assert 0 < max_age <= settings.AUTHENTICATOR_LIFETIME_HOURS * 3600


def test_answers_that_set_a_cookie_are_never_stored_by_caches(make_user):
    make_user("ada")
    response = Client().post("/login", {"username": "ada", "password": PASSWORD})
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


@pytest.mark.parametrize("path", ["/", "/login", "/search?q=x", "/no/such/page",
                                  "/exp/v1/home", "/exp/v1/nothing"])
def test_every_answer_refuses_framing_and_sniffing(in_process, path):
    response = Client().get(path)
    assert response["X-Content-Type-Options"] == "nosniff"
    if not path.startswith("/exp/"):
        assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_debug_is_off_and_errors_show_the_friendly_page(in_process):
    assert settings.DEBUG is False
    response = Client().get("/no/such/page")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Traceback" not in page and "URLconf" not in page and "DEBUG" not in page
