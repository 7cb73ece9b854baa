"""Fuzz tests: generated calls of the JSON APIs (schemathesis, tests/fuzz/harness.py) and
generated input for the web forms and the page cache's keys (hypothesis). The API tests call
the real application in this process, each on a fresh test database with the fuzzer's world in
it (the `world` fixture); their calls are tallied and written as JSON to $FUZZ_REPORT when it is
set (the lab's reliability notebook reads it)."""
import json
import os
from pathlib import Path

import pytest

from tests.fuzz import harness
from tests.inprocess import tiers_in_process


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: generated API calls (schemathesis, hypothesis)")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/fuzz/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.fuzz)


@pytest.fixture
def world(db):
    """The fuzzer, its credentials and a few objects the steered ids name, with the tiers
    talking in-process."""
    with tiers_in_process():
        fuzzer = harness.make_world()
        try:
            yield fuzzer
        finally:
            harness.forget_world()


def pytest_sessionfinish(session):
    target = os.environ.get("FUZZ_REPORT")
    if not target or not harness.TALLY:
        return
    rows = [{"tier": tier, "method": method, "path": path, "mode": mode, "status": status,
             "calls": calls}
            for (tier, method, path, mode, status), calls in sorted(harness.TALLY.items())]
    Path(target).write_text(json.dumps({
        "examples_per_operation": harness.EXAMPLES, "stateful_runs": harness.STATEFUL_RUNS,
        "stateful_steps": harness.STATEFUL_STEPS, "random": harness.RANDOM, "calls": rows},
        indent=2))
