"""The fuzzing harness would notice what it is there to catch: a zero-failure run means
something only if a broken operation fails it."""
import pytest
from django.conf import settings
from hypothesis import find
from schemathesis.core.failures import FailureGroup

from entity import services
from marketplace.api import ApiError
from tests.fuzz import harness

entity = harness.load("entity")
experience = harness.load("experience")
CREDENTIAL = {"X-Service-Token": settings.SERVICE_TOKEN}


@pytest.fixture(autouse=True)
def untallied(world):
    """The failures provoked here are not part of the fuzzing campaign's counts."""
    before = harness.TALLY.copy()
    yield
    harness.TALLY.clear()
    harness.TALLY.update(before)


def failures_of(case):
    with pytest.raises(FailureGroup) as raised:
        case.call_and_validate()
    return [type(failure).__name__ for failure in raised.value.exceptions]


def test_a_server_error_fails_the_run(monkeypatch):
    def crash(query):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "list_users", crash)
    case = entity["/entity/v1/users"]["GET"].Case(query={"limit": 5}, headers=CREDENTIAL)
    assert "ServerError" in failures_of(case)


def test_an_undocumented_status_fails_the_run(monkeypatch):
    def teapot(query):
        raise ApiError(418, "teapot", "I am a teapot.")

    monkeypatch.setattr(services, "search_listings", teapot)
    case = entity["/entity/v1/listings"]["GET"].Case(query={}, headers=CREDENTIAL)
    assert "UndefinedStatusCode" in failures_of(case)


def test_an_answer_without_its_credential_fails_the_run(monkeypatch):
    # the entity API must refuse calls without X-Service-Token; schemathesis sends one
    # without it and expects a 401
    from entity import api

    monkeypatch.setattr(api.ServiceCredential, "authenticate", lambda self, request, key: "x")
    case = entity["/entity/v1/users"]["GET"].Case(query={"limit": 5}, headers=CREDENTIAL)
    assert "IgnoredAuth" in failures_of(case)


def test_generated_calls_carry_a_working_credential():
    case = find(experience["/exp/v1/me"]["GET"].as_strategy(), lambda case: True,
                settings=harness.SETTINGS)
    response = case.call_and_validate()
    assert response.status_code == 200 and response.json()["data"]["user"]["username"] == "fuzzer"


class EnsureResourceAvailability(Exception):
    """Stands in for schemathesis's failure of that name (the filter goes by the name)."""


def case_for(**path_parameters):
    from types import SimpleNamespace

    return SimpleNamespace(path_parameters=path_parameters)


def test_a_404_for_what_a_deleted_user_owned_is_not_a_failure():
    # deleting a user deletes their authenticators: schemathesis does not know that
    harness.OWNERS[("authenticator", 6)] = 3
    harness.DELETED_USERS.add(3)
    try:
        gone = harness.filter_failure(None, EnsureResourceAvailability(),
                                      case_for(authenticator_id=6),
                                      type("Response", (), {"status_code": 404}))
        kept = harness.filter_failure(None, EnsureResourceAvailability(),
                                      case_for(authenticator_id=7),
                                      type("Response", (), {"status_code": 404}))
    finally:
        harness.OWNERS.clear()
        harness.DELETED_USERS.clear()
    assert gone is False and kept is True
