"""The entity API, fuzzed from its OpenAPI document: one test per operation (examples from the
document, schemathesis's boundary values, then generated valid and invalid calls), and stateful
runs that follow the links between operations (create a user, then read, change, delete it...).
Every answer must be documented, match its schema, and never be a 5xx."""
import pytest

from tests.fuzz import harness

schema = harness.load("entity")


@pytest.mark.usefixtures("world")
@schema.parametrize()
@harness.SETTINGS
def test_every_entity_operation_answers_as_documented(case):
    case.call_and_validate()
    harness.restore_credentials()


@pytest.mark.usefixtures("world")
def test_entity_workflows_answer_as_documented():
    with harness.ids_from_links():
        harness.isolated_machine(schema).run(settings=harness.STATEFUL_SETTINGS)
