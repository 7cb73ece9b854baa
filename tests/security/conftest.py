"""Security tests. Most run all three tiers in this process on the throwaway test database
(tests/inprocess.py), as the unit tests do; test_stack_security.py starts one small real stack
for what only the real processes can show (HAProxy, Redis, cookies through the load balancer)."""
import pytest
from django.conf import settings
from django.test import Client

from tests.factories import STRONG_PASSWORD as PASSWORD
from tests.factories import new_listing, new_user
from tests.inprocess import tiers_in_process


@pytest.fixture
def in_process(db):
    with tiers_in_process():
        yield


@pytest.fixture
def make_user(in_process):
    def make(username="ada", **fields):
        return new_user(username, PASSWORD, **fields)

    return make


@pytest.fixture
def make_listing(in_process):
    def make(title="Oak desk", seller=None, **fields):
        return new_listing(title, fields.pop("price", "12.50"), fields.pop("description", ""),
                           seller, **fields)

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
