"""The entity API serves only callers holding the service credential (the experience tier)."""
import pytest
from django.test import Client

from tests.unit.json_api import error_of

PATHS = ["/entity/v1/users", "/entity/v1/listings", "/entity/v1/authenticators"]


@pytest.mark.parametrize("path", PATHS)
def test_entity_api_refuses_calls_without_the_credential(path):
    response = Client().get(path)
    assert response.status_code == 401 and error_of(response)["code"] == "unauthorized"


def test_entity_api_refuses_a_wrong_credential():
    response = Client().get("/entity/v1/listings", headers={"X-Service-Token": "guess"})
    assert response.status_code == 401


def test_entity_api_publishes_its_openapi_document():
    document = Client().get("/entity/v1/openapi.json").json()
    assert "/entity/v1/listings" in document["paths"]
