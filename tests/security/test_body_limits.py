"""Request bodies are limited (64 KiB, settings.DATA_UPLOAD_MAX_MEMORY_SIZE) on every operation
that takes one: the JSON tiers answer 413 in their error shape, the web forms the friendly 400
page, and a body just under the limit is still read."""
import json
import re

import pytest
from django.conf import settings
from django.test import Client

from entity.api import api as entity_api
from experience.api import api as experience_api

LIMIT = settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def operations_with_a_body():
    for api in (entity_api, experience_api):
        for path, methods in api.get_openapi_schema()["paths"].items():
            for method, operation in methods.items():
                if "requestBody" in operation:
                    yield method.upper(), re.sub(r"\{[^}]+\}", "1", path)


OPERATIONS = sorted(operations_with_a_body())


def oversized():
    return json.dumps({"title": "x" * (LIMIT + 1)})


@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_json_operation_refuses_a_body_over_the_limit(member, method, path):
    headers = {"X-Service-Token": settings.SERVICE_TOKEN,
               "Authorization": f"Bearer {member.token}"}
    response = Client().generic(method, path, data=oversized(), content_type="application/json",
                                headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


# (/logout reads no field of its body: it is never parsed, so it costs no memory)
@pytest.mark.parametrize("path", ["/signup", "/login", "/listings/new"])
def test_every_form_refuses_a_body_over_the_limit_with_a_friendly_page(member, path):
    response = member.post(path, {"description": "x" * (LIMIT + 1)})
    assert response.status_code == 400
    assert b"<!doctype html>" in response.content.lower()


def test_a_body_just_under_the_limit_is_read(member):
    description = "x" * 4000
    body = json.dumps({"title": "Long lamp", "price": "3", "description": description})
    padding = LIMIT - len(body) - 100
    body = json.dumps({"title": "Long lamp", "price": "3", "description": description,
                       "unused": " " * padding})
    assert len(body) < LIMIT
    response = Client().post("/exp/v1/listings", body, content_type="application/json",
                             headers={"Authorization": f"Bearer {member.token}"})
    assert response.status_code == 422  # read and judged: "unused" is not a field
