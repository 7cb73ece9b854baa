"""Sign up, log in and log out: the forms, the errors the experience tier reports, and the
authenticator cookie."""
import pytest
from django.conf import settings
from django.test import Client

from entity.models import Authenticator, User

PASSWORD = "a sturdy passphrase 42"
AUTH = settings.AUTH_COOKIE_NAME


def signup_form(**changes):
    form = {"username": "grace", "email": "grace@example.com", "password": PASSWORD,
            "password_confirm": PASSWORD}
    form.update(changes)
    return form


def errors_of(response):
    return response.content.decode()


# --- sign up ---------------------------------------------------------------------------------

def test_signup_page_shows_the_form(browser):
    response = browser.get("/signup")
    assert response.status_code == 200
    page = response.content.decode()
    for name in ("username", "email", "password", "password_confirm"):
        assert f'name="{name}"' in page
    assert "csrfmiddlewaretoken" in page


def test_signup_creates_the_account_logs_in_and_welcomes(browser):
    response = browser.post("/signup", signup_form(), follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert User.objects.filter(username="grace").exists()
    assert Authenticator.objects.filter(user__username="grace").count() == 1
    page = response.content.decode()
    assert "Welcome to Marketplace, grace!" in page
    assert "Hi, grace" in page and "Log out" in page


def test_signup_with_a_taken_username_says_so(browser, make_user):
    make_user("grace")
    response = browser.post("/signup", signup_form())
    assert response.status_code == 200
    assert "That username is already taken." in response.content.decode()
    assert AUTH not in response.cookies
    assert User.objects.filter(username="grace").count() == 1


def test_signup_with_a_weak_password_shows_the_tiers_reason(browser):
    response = browser.post("/signup", signup_form(password="12345678",
                                                   password_confirm="12345678"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "This password is too common." in page
    assert not User.objects.filter(username="grace").exists()


def test_signup_with_mismatched_passwords_says_so(browser):
    response = browser.post("/signup", signup_form(password_confirm="another passphrase 42"))
    assert "The two passwords do not match." in response.content.decode()
    assert not User.objects.filter(username="grace").exists()


def test_signup_with_missing_fields_marks_each_of_them(browser):
    response = browser.post("/signup", {})
    page = response.content.decode()
    assert page.count("This field is required.") == 4
    assert not User.objects.exists()


def test_signup_with_a_bad_email_and_username_says_what_is_wrong(browser):
    response = browser.post("/signup", signup_form(username="no spaces!", email="nope"))
    page = response.content.decode()
    assert "Use only letters, digits, dots, dashes or underscores." in page
    assert "Enter a valid email address." in page
    assert not User.objects.exists()


def test_signup_keeps_what_was_typed_but_never_the_password(browser):
    page = browser.post("/signup", signup_form(password_confirm="different one 43")
                        ).content.decode()
    assert 'value="grace"' in page and 'value="grace@example.com"' in page
    assert PASSWORD not in page


# --- log in ----------------------------------------------------------------------------------

def test_login_page_shows_the_form_and_is_never_cached(browser):
    response = browser.get("/login")
    assert response.status_code == 200
    assert 'name="password"' in response.content.decode()
    assert "no-store" in response["Cache-Control"]


def test_login_sets_an_httponly_samesite_cookie_until_the_authenticator_expires(
        browser, make_user):
    make_user("grace", password=PASSWORD)
    response = browser.post("/login", {"username": "grace", "password": PASSWORD})
    assert response.status_code == 302
    cookie = response.cookies[AUTH]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # AUTH_COOKIE_SECURE is off on plain-HTTP loopback
    hours = settings.AUTHENTICATOR_LIFETIME_HOURS
    assert hours * 3600 - 60 <= int(cookie["max-age"]) <= hours * 3600
    assert "no-store" in response["Cache-Control"]


def test_login_cookie_is_secure_when_the_site_is_behind_tls(browser, make_user, settings):
    settings.AUTH_COOKIE_SECURE = True
    make_user("grace", password=PASSWORD)
    response = browser.post("/login", {"username": "grace", "password": PASSWORD})
    assert response.cookies[AUTH]["secure"] is True


def test_login_welcomes_back_and_shows_the_visitor_in_the_header(browser, make_user):
    make_user("grace", password=PASSWORD, display_name="Grace Hopper")
    response = browser.post("/login", {"username": "grace", "password": PASSWORD},
                            follow=True)
    page = response.content.decode()
    assert "Welcome back, Grace Hopper!" in page
    assert "Hi, Grace Hopper" in page
    assert 'action="/logout"' in page


def test_login_with_a_wrong_password_says_so(browser, make_user):
    make_user("grace", password=PASSWORD)
    response = browser.post("/login", {"username": "grace", "password": "not it"})
    assert response.status_code == 200
    assert "Wrong username or password." in response.content.decode()
    assert AUTH not in response.cookies


def test_login_goes_back_to_the_page_named_in_next(browser, make_user):
    user = make_user("grace", password=PASSWORD)
    response = browser.post("/login?next=/sellers/%d" % user.id,
                            {"username": "grace", "password": PASSWORD,
                             "next": f"/sellers/{user.id}"})
    assert response["Location"] == f"/sellers/{user.id}"


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/",
                                      "javascript:alert(1)", "http://testserver.evil/"])
def test_login_ignores_a_next_that_leaves_the_site(browser, make_user, next_url):
    make_user("grace", password=PASSWORD)
    response = browser.post("/login", {"username": "grace", "password": PASSWORD,
                                       "next": next_url})
    assert response["Location"] == "/"


def test_login_page_carries_next_into_its_form(browser):
    page = browser.get("/login", {"next": "/listings/new"}).content.decode()
    assert '<input type="hidden" name="next" value="/listings/new">' in page


# --- the visitor -----------------------------------------------------------------------------

def test_pages_for_a_logged_in_visitor_are_private(member, seller, listing):
    for url in ("/", f"/listings/{listing.id}", f"/sellers/{seller.id}", "/search?q=desk"):
        response = member.get(url)
        assert response.status_code == 200
        assert "private" in response["Cache-Control"], url
        assert "Hi, Ada Lovelace" in response.content.decode(), url


def test_an_expired_or_revoked_cookie_is_treated_as_anonymous_and_deleted(member):
    Authenticator.objects.update(revoked_at="2026-01-01T00:00:00Z")
    response = member.get("/")
    assert response.status_code == 200
    assert "Hi, Ada" not in response.content.decode()
    assert "Log in" in response.content.decode()
    assert response.cookies[AUTH].value == ""
    assert response.cookies[AUTH]["max-age"] == 0


def test_a_garbage_cookie_is_treated_as_anonymous(browser):
    browser.cookies[AUTH] = "not-a-token"
    response = browser.get("/")
    assert response.status_code == 200
    assert "Log in" in response.content.decode()
    assert response.cookies[AUTH].value == ""


# --- log out ---------------------------------------------------------------------------------

def test_logout_revokes_the_authenticator_and_clears_the_cookie(member):
    response = member.post("/logout", follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert Authenticator.objects.get().revoked
    assert member.cookies[AUTH].value == ""
    page = response.content.decode()
    assert "Logged out." in page
    assert "Log in" in page and "Hi, Ada" not in page


def test_opening_logout_by_address_goes_home_without_logging_out(member):
    response = member.get("/logout")
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Authenticator.objects.get().revoked


def test_logout_needs_the_csrf_token(seller, log_in):
    strict = Client(enforce_csrf_checks=True)
    log_in(strict, seller)
    response = strict.post("/logout")
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert not Authenticator.objects.get().revoked


def test_logout_works_with_the_token_from_the_page(seller, log_in):
    strict = Client(enforce_csrf_checks=True)
    log_in(strict, seller)
    page = strict.get("/")
    token = page.context["csrf_token"]
    response = strict.post("/logout", {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302
    assert Authenticator.objects.get().revoked


def test_login_and_signup_need_the_csrf_token(make_user):
    make_user("grace", password=PASSWORD)
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/login", {"username": "grace", "password": PASSWORD}
                       ).status_code == 403
    assert strict.post("/signup", signup_form(username="hedy")).status_code == 403
    assert not User.objects.filter(username="hedy").exists()
    assert not Authenticator.objects.exists()
