"""Unit tests run all three tiers in one process: calls between tiers go through Django's test
client instead of the network, so the experience and web tiers are tested against the real
entity code and the throwaway test database."""
import pytest

from tests.factories import STRONG_PASSWORD, new_listing, new_user
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


@pytest.fixture
def make_user():
    def make(username="alice", password=STRONG_PASSWORD, **fields):
        return new_user(username, password, **fields)

    return make


@pytest.fixture
def make_listing():
    def make(title="Oak desk", price="120.00", seller=None, **fields):
        return new_listing(title, price, fields.pop("description", f"A fine {title}."),
                           seller, **fields)

    return make
