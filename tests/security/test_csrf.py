"""CSRF: every address of the web tier refuses a POST without its token (enumerated from the
URLconf, so a new form cannot be forgotten), and every form that posts carries the token."""
import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern

from web import urls as web_urls

PATTERNS = [pattern for pattern in web_urls.urlpatterns if isinstance(pattern, URLPattern)]
FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)


def address(pattern, some_id):
    return "/" + re.sub(r"<int:\w+>", str(some_id), str(pattern.pattern))


def guarded_browser(token=None):
    browser = Client(enforce_csrf_checks=True)
    if token:
        browser.cookies[settings.AUTH_COOKIE_NAME] = token
    return browser


@pytest.mark.parametrize("pattern", PATTERNS, ids=[pattern.name for pattern in PATTERNS])
@pytest.mark.parametrize("who", ["anonymous", "logged in"])
def test_every_address_refuses_a_post_without_the_csrf_token(member, make_listing, pattern, who):
    listing = make_listing(seller=member.user)
    browser = guarded_browser(member.token if who == "logged in" else None)
    response = browser.post(address(pattern, listing.pk),
                            {"username": "ada", "password": "x", "title": "Lamp", "price": "3"})
    assert response.status_code == 403


def test_a_token_from_another_browser_is_refused(member):
    other = Client(enforce_csrf_checks=True)
    other.get("/login")
    foreign_token = other.cookies[settings.CSRF_COOKIE_NAME].value
    browser = guarded_browser(member.token)
    response = browser.post("/logout", {"csrfmiddlewaretoken": foreign_token})
    assert response.status_code == 403


def test_the_token_from_the_page_is_accepted(member):
    browser = guarded_browser(member.token)
    page = browser.get("/listings/new").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = browser.post("/listings/new", {"csrfmiddlewaretoken": token, "title": "Lamp",
                                              "price": "3", "description": ""})
    assert response.status_code == 302


@pytest.mark.parametrize("path", ["/", "/signup", "/login", "/listings/new", "/search?q=desk",
                                  "/listings/{id}", "/sellers/{seller}"])
def test_every_form_that_posts_carries_the_csrf_token(member, make_listing, path):
    listing = make_listing(seller=member.user)
    page = member.get(path.format(id=listing.pk, seller=member.user.pk)).content.decode()
    forms = FORM.findall(page)
    posting = [form for form in forms if re.search(r'method="post"', form, re.I)]
    assert forms, f"no form on {path}"
    for form in posting:
        assert 'name="csrfmiddlewaretoken"' in form, form[:120]
