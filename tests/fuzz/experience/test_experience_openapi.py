"""The experience API, fuzzed from its OpenAPI document, with the entity tier behind it in the
same process: one test per screen or action, and stateful runs (search, then open a result;
create a listing, then open it). Every answer must be documented, match its schema, and never be
a 5xx, whatever the entity tier answered it."""
import pytest

from tests.fuzz import harness

schema = harness.load("experience")


@pytest.mark.usefixtures("world")
@schema.parametrize()
@harness.SETTINGS
def test_every_experience_operation_answers_as_documented(case):
    case.call_and_validate()
    harness.restore_credentials()


@pytest.mark.usefixtures("world")
def test_experience_workflows_answer_as_documented():
    with harness.ids_from_links():
        harness.isolated_machine(schema).run(settings=harness.STATEFUL_SETTINGS)
