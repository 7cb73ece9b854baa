"""Unit tests run all three tiers in one process: calls between tiers go through Django's test
client instead of the network, so the experience and web tiers are tested against the real
entity code and the throwaway test database."""
from decimal import Decimal

import pytest

from tests.inprocess import tiers_in_process as in_process
from tests.unit.json_api import JsonClient


@pytest.fixture(autouse=True)
def tiers_in_process(db):
    with in_process():
        yield


@pytest.fixture
def entity_api(settings):
    return JsonClient("/entity/v1", {"X-Service-Token": settings.SERVICE_TOKEN})


@pytest.fixture
def experience_api():
    return JsonClient("/exp/v1")


STRONG_PASSWORD = "a sturdy passphrase 42"


@pytest.fixture
def make_user():
    from entity.models import User

    def make(username="alice", password=STRONG_PASSWORD, **fields):
        user = User(username=username, email=f"{username}@example.com",
                    display_name=fields.pop("display_name", username.title()), **fields)
        user.set_password(password)
        user.save()
        return user

    return make


@pytest.fixture
def make_listing(make_user):
    from entity.models import Listing

    def make(title="Oak desk", price="120.00", seller=None, **fields):
        seller = seller or make_user(f"seller{Listing.objects.count() + 1}")
        return Listing.objects.create(title=title, price=Decimal(price), seller=seller,
                                      description=fields.pop("description", f"A fine {title}."),
                                      **fields)

    return make
