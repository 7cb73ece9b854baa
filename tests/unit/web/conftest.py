"""Fixtures of the web tier's tests: people and listings made through the entity models (the
parent conftest's make_user / make_listing; its autouse fixture routes the web tier's calls to
the real experience and entity code), and browsers that are anonymous or logged in with a real
authenticator cookie."""
import httpx
import pytest
from django.conf import settings
from django.test import Client

from entity.models import Authenticator
from marketplace import upstream


@pytest.fixture
def seller(make_user):
    return make_user("ada", display_name="Ada Lovelace", bio="I sell engines and old desks.")


@pytest.fixture
def listing(seller, make_listing):
    return make_listing(seller=seller, title="Walnut writing desk", price="1234.50",
                        description="Solid walnut.\nTwo drawers, one key.")


@pytest.fixture
def browser():
    return Client()


@pytest.fixture
def log_in():
    def give_cookie(client, user):
        """Gives `client` a valid authenticator cookie for `user`, as the login page would."""
        _, token = Authenticator.issue(user)
        client.cookies[settings.AUTH_COOKIE_NAME] = token
        return token

    return give_cookie


@pytest.fixture
def member(seller, browser, log_in):
    """A browser logged in as the seller (Ada); its token is member.token."""
    browser.token = log_in(browser, seller)
    return browser


def refuse(request):
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
def experience_down():
    upstream.use_transport("experience", httpx.MockTransport(refuse))
    # the parent conftest's teardown puts the network transport back
