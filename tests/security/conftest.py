"""Security tests. Most run all three tiers in this process on the throwaway test database
(tests/inprocess.py), as the unit tests do; test_stack_security.py starts one small real stack
for what only the real processes can show (HAProxy, Redis, cookies through the load balancer)."""
import pytest
from django.conf import settings
from django.test import Client

from tests.inprocess import tiers_in_process

PASSWORD = "a sturdy passphrase 42"


@pytest.fixture
def in_process(db):
    with tiers_in_process():
        yield


@pytest.fixture
def make_user(in_process):
    from entity.models import User

    def make(username="ada", **fields):
        user = User(username=username, email=f"{username}@example.com",
                    display_name=fields.pop("display_name", username.title()), **fields)
        user.set_password(PASSWORD)
        user.save()
        return user

    return make


@pytest.fixture
def make_listing(make_user):
    from decimal import Decimal

    from entity.models import Listing

    def make(title="Oak desk", seller=None, **fields):
        seller = seller or make_user(f"seller{Listing.objects.count() + 1}")
        return Listing.objects.create(title=title, price=Decimal(fields.pop("price", "12.50")),
                                      seller=seller, description=fields.pop("description", ""),
                                      **fields)

    return make


@pytest.fixture
def issue_token():
    from entity.models import Authenticator

    return lambda user: Authenticator.issue(user)[1]


@pytest.fixture
def member(make_user, issue_token):
    """A browser logged in as Ada, with the real authenticator cookie (browser.token)."""
    browser = Client()
    browser.user = make_user("ada")
    browser.token = issue_token(browser.user)
    browser.cookies[settings.AUTH_COOKIE_NAME] = browser.token
    return browser
