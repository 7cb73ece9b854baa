"""SQL-injection probes in every place a person types text or a number (search on each tier,
seller pages, log-in, sign-up, the listing form) change nothing in the database, and are taken
for what they are: text."""
import hashlib

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from lab.security import SQL_PROBES


def database_fingerprint():
    """A digest of every row of every table of the marketplace."""
    digest = hashlib.sha256()
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type='table' "
                       "AND name LIKE 'entity_%' ORDER BY name")
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT * FROM "{table}" ORDER BY 1')
            digest.update(repr((table, cursor.fetchall())).encode())
    return digest.hexdigest()


@pytest.fixture
def shop(make_user, make_listing):
    seller = make_user("ada")
    for title in ("Oak desk", "Brass lamp", "Walnut chair"):
        make_listing(title=title, seller=seller)
    return seller


@pytest.mark.parametrize("probe", SQL_PROBES)
def test_probes_in_searches_and_log_ins_change_nothing_and_find_nothing(shop, probe):
    before = database_fingerprint()
    entity = {"X-Service-Token": settings.SERVICE_TOKEN}
    answers = [
        Client().get("/search", {"q": probe}),
        Client().get(f"/sellers/{shop.pk}", {"page": probe}),
        Client().get("/exp/v1/search", {"q": probe}),
        Client().get("/entity/v1/listings", {"q": probe, "order": "newest"}, headers=entity),
        Client().post("/login", {"username": probe, "password": probe}),
        Client().post("/exp/v1/login", {"username": probe, "password": probe},
                      content_type="application/json"),
        Client().post("/signup", {"username": probe, "email": "x@example.com",
                                  "password": probe, "password_confirm": probe}),
    ]
    assert [response.status_code < 500 for response in answers] == [True] * len(answers)
    assert Client().get("/exp/v1/search", {"q": probe}).json()["data"]["count"] == 0
    assert database_fingerprint() == before


@pytest.mark.parametrize("probe", SQL_PROBES)
def test_a_probe_typed_into_the_listing_form_is_stored_as_text(member, probe):
    from entity.models import Listing

    before = Listing.objects.count()
    response = member.post("/listings/new", {"title": f"Lamp {probe}"[:120], "price": "3",
                                             "description": probe})
    assert response.status_code == 302
    created = Listing.objects.order_by("-id").first()
    assert Listing.objects.count() == before + 1
    assert created.title == f"Lamp {probe}"[:120] and created.description == probe
    found = Client().get("/exp/v1/search", {"q": probe}).json()["data"]
    assert [item["id"] for item in found["results"]] == [created.pk]
