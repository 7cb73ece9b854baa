"""Running a suite from a notebook (lab.testruns): a real pytest run becomes a table of cases,
and a run in which no test ran at all is an error, never "0 of 0 passed"."""
import os

import pytest

from lab.rundir import RunDir
from lab.testruns import run_pytest

# the sample suite needs none of the installed plugins (Django, schemathesis, hypothesis),
# whose loading is most of a pytest start
BARE = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


@pytest.fixture
def suite(tmp_path):
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "test_sample.py").write_text(
        "import pytest\n\n"
        "def test_one_passes():\n    assert True\n\n"
        "def test_one_fails():\n    assert 1 == 2\n")
    return folder


def test_a_suite_with_a_failure_is_returned_as_cases_not_raised(tmp_path, suite):
    cases, counts, _ = run_pytest(RunDir(tmp_path / "run"), "t", [str(suite)], "sample",
                                  extra=("--rootdir", str(suite)), env=BARE)
    assert sorted(cases["outcome"]) == ["failed", "passed"]
    assert counts["passed"] == 1 and counts["failed"] == 1 and counts["exit_code"] == 1


@pytest.mark.parametrize("selection, says", [
    (("-m", "no_such_marker_anywhere"), "ran no test"),
    (("-k", "nothing_matches_this"), "ran no test"),
])
def test_a_run_in_which_no_test_ran_is_an_error(tmp_path, suite, selection, says):
    with pytest.raises(RuntimeError, match=says):
        run_pytest(RunDir(tmp_path / "run"), "t", [str(suite)], "sample",
                   extra=("--rootdir", str(suite), *selection), env=BARE)
