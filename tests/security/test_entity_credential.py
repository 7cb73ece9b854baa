"""The entity API is internal: every operation it publishes refuses callers without the service
credential, the credential never leaves the experience tier, and the web tier is not given it."""
import re

import pytest
from django.conf import settings
from django.test import Client

from entity.api import api as entity_api
from infra import Stack, StackConfig


def operations():
    document = entity_api.get_openapi_schema()
    for path, methods in document["paths"].items():
        for method in methods:
            yield method.upper(), re.sub(r"\{[^}]+\}", "1", path)


OPERATIONS = sorted(set(operations()))
WRONG = {"none": {}, "empty": {"X-Service-Token": ""}, "a guess": {"X-Service-Token": "guess"},
         "one character more": None, "another header": None}


@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@pytest.mark.parametrize("credential", list(WRONG))
def test_every_entity_operation_refuses_a_caller_without_the_credential(
        in_process, method, path, credential):
    headers = WRONG[credential]
    if credential == "one character more":
        headers = {"X-Service-Token": settings.SERVICE_TOKEN + "x"}
    elif credential == "another header":  # the right value under a name the API does not read
        headers = {"Authorization": f"Bearer {settings.SERVICE_TOKEN}"}
    response = Client().generic(method, path, data="{}", content_type="application/json",
                                headers=headers)
    assert response.status_code == 401, response.content[:200]


def test_the_credential_never_appears_in_what_the_public_tiers_answer(make_listing, member):
    listing = make_listing()
    answers = [Client().get(path) for path in (
        "/exp/v1/home", f"/exp/v1/listings/{listing.pk}", "/exp/v1/search?q=desk",
        "/exp/v1/openapi.json", "/exp/v1/no-such-screen", "/", f"/listings/{listing.pk}",
        "/search?q=desk")]
    answers.append(member.get("/listings/new"))
    for response in answers:
        assert settings.SERVICE_TOKEN.encode() not in response.content
        assert settings.SERVICE_TOKEN not in str(response.headers)


def test_the_stack_does_not_give_the_web_tier_the_credential(tmp_path):
    stack = Stack(StackConfig(run_dir=tmp_path / "state", secrets_dir=tmp_path / "secrets"),
                  progress=None)
    token = stack.credentials.service_token
    environments = {instance.tier: stack._instance_env(instance) for instance in stack.instances()}
    assert environments["web"]["LAB_SERVICE_TOKEN"] != token
    assert environments["experience"]["LAB_SERVICE_TOKEN"] == token
    assert token not in " ".join(environments["web"].values())
