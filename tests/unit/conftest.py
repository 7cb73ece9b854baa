"""Unit tests run all three tiers in one process: calls between tiers go through Django's test
client instead of the network, so the experience and web tiers are tested against the real
entity code and the throwaway test database."""
from decimal import Decimal

import httpx
import pytest
from django.test import Client

from marketplace import upstream
from tests.unit.json_api import JsonClient


class DjangoClientTransport(httpx.BaseTransport):
    """An httpx transport that hands each request to Django in this process."""

    def __init__(self):
        self.client = Client()

    def handle_request(self, request):
        headers = {key: value for key, value in request.headers.items()
                   if key.lower() not in ("host", "content-length")}
        response = self.client.generic(request.method, str(request.url.raw_path, "ascii"),
                                       data=request.read(),
                                       content_type=request.headers.get("content-type", ""),
                                       headers=headers)
        return httpx.Response(response.status_code, headers=dict(response.items()),
                              content=response.content)


@pytest.fixture(autouse=True)
def tiers_in_process(db):
    for name in ("entity", "experience"):
        upstream.use_transport(name, DjangoClientTransport())
    yield
    for name in ("entity", "experience"):
        upstream.use_transport(name, None)


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
