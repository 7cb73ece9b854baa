"""The report runner: profiles, parameters, failure reporting and the offline export."""
import json
from pathlib import Path

import nbformat
import pytest

from lab import report
from lab.profiles import PROFILES, parameters
from lab.rundir import RunDir, display_command

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
          "language_info": {"name": "python"}}


def write_notebook(path, *cells, parameters_cell="run_dir = ''\nsteps = 3"):
    notebook = nbformat.v4.new_notebook(metadata=KERNEL)
    notebook.cells = [nbformat.v4.new_markdown_cell("# A notebook"),
                      nbformat.v4.new_code_cell(parameters_cell,
                                                metadata={"tags": ["parameters"]}),
                      *[nbformat.v4.new_code_cell(source) for source in cells]]
    nbformat.write(notebook, path)
    return path


def test_every_profile_has_the_same_parameter_names():
    names = [set(values) for values in PROFILES.values()]
    assert all(group == names[0] for group in names)


def test_overrides_replace_one_parameter_and_parse_numbers():
    values = parameters("quick", ["load_max_users=60", "note=hello world"])
    assert values["load_max_users"] == 60 and values["note"] == "hello world"
    assert values["wrk_seconds"] == PROFILES["quick"]["wrk_seconds"]


@pytest.mark.parametrize("bad", [["no-equals-sign"], ["=5"]])
def test_a_malformed_override_is_refused_with_a_message(bad):
    with pytest.raises(SystemExit, match="name=value"):
        parameters("quick", bad)


def test_an_unknown_profile_is_refused_with_the_choices():
    with pytest.raises(SystemExit, match="quick"):
        parameters("medium")


def test_declared_parameters_are_the_names_of_the_parameters_cell(tmp_path):
    path = write_notebook(tmp_path / "01_x.ipynb")
    assert report.declared_parameters(path) == {"run_dir", "steps"}


def test_a_notebook_runs_with_only_the_parameters_it_declares(tmp_path):
    path = write_notebook(tmp_path / "01_x.ipynb",
                          "import json, pathlib\n"
                          "pathlib.Path(run_dir, 'seen.json').write_text(json.dumps(steps))")
    run = RunDir(tmp_path / "run")
    report.run_notebook(path, run, {"run_dir": str(run.path), "steps": 7, "other": 1},
                        cell_timeout=60, notebook_timeout=120)
    assert json.loads((run.path / "seen.json").read_text()) == 7
    given = json.loads((run.path / "notebooks" / "01_x.parameters.json").read_text())
    assert "other" not in given
    assert "lab.execute_notebook" in run.commands()[0]["command"]


def test_a_failing_notebook_is_reported_with_its_failing_cell(tmp_path):
    path = write_notebook(tmp_path / "02_bad.ipynb", "x = 1", "raise ValueError('broken on purpose')")
    run = RunDir(tmp_path / "run")
    with pytest.raises(report.NotebookFailed, match=r"02_bad.ipynb failed in cell \d+ .*broken on purpose"):
        report.run_notebook(path, run, {"run_dir": str(run.path)}, cell_timeout=60,
                            notebook_timeout=120)


def test_the_exported_html_has_no_code_and_no_external_urls(tmp_path):
    path = write_notebook(tmp_path / "99_writeup.ipynb",
                          "from IPython.display import Markdown\nMarkdown('**measured: 42**')")
    run = RunDir(tmp_path / "run")
    executed = report.run_notebook(path, run, {"run_dir": str(run.path)}, cell_timeout=60,
                                   notebook_timeout=120)
    html = report.export_html(executed, tmp_path / "report.html").read_text()
    assert "<strong>measured: 42</strong>" in html
    assert "from IPython.display" not in html
    assert "http://" not in html and "https://" not in html


def test_commands_are_recorded_as_a_person_would_type_them(tmp_path):
    run = RunDir(tmp_path)
    run.run("topic", ["python3", "-c", "print('hi')"], "say hi")
    entry = run.commands()[0]
    assert entry["command"] == "python3 -c 'print('\"'\"'hi'\"'\"')'" and entry["returncode"] == 0
    assert (run.path / entry["log"]).read_text() == "hi\n"


def test_a_repository_path_is_shown_relative_to_the_repository():
    assert display_command([report.REPO_DIR / "tests" / "x.py", "-q"]) == "tests/x.py -q"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_value_of_a_profile_is_a_parameter_some_notebook_declares(profile):
    # a value no notebook reads would look like a setting and change nothing
    declared = set().union(*(report.declared_parameters(path) for path in report.notebooks()))
    assert set(PROFILES[profile]) - declared == set()


def test_only_neighbouring_test_suite_notebooks_are_batched_side_by_side(tmp_path):
    names = ["01_stack", "02_unit_tests", "03_integration_tests", "04_caching", "99_writeup"]
    paths = [tmp_path / f"{name}.ipynb" for name in names]
    assert [[path.stem for path in batch] for batch in report.batches(paths)] == [
        ["01_stack"], ["02_unit_tests", "03_integration_tests"], ["04_caching"], ["99_writeup"]]
    alone = [paths[1], paths[3]]  # not neighbours: each on its own
    assert [len(batch) for batch in report.batches(alone)] == [1, 1]


def test_a_side_by_side_batch_finishes_both_and_reports_the_one_that_failed(tmp_path):
    good = write_notebook(tmp_path / "02_unit_tests.ipynb",
                          "import pathlib, time\ntime.sleep(1)\n"
                          "pathlib.Path(run_dir, 'finished').write_text('yes')")
    bad = write_notebook(tmp_path / "03_integration_tests.ipynb", "raise ValueError('on purpose')")
    run = RunDir(tmp_path / "run")
    executed = {}
    took, failures = report._run_batch([good, bad], run, {"run_dir": str(run.path)}, 60, 120,
                                       executed)
    assert (run.path / "finished").read_text() == "yes"
    assert list(took) == ["02_unit_tests"] and list(executed) == ["02_unit_tests"]
    assert len(failures) == 1 and "03_integration_tests.ipynb failed in cell" in str(failures[0])


def test_a_notebook_kernel_listens_on_unix_sockets_that_are_removed_afterwards(tmp_path):
    path = write_notebook(tmp_path / "01_x.ipynb",
                          "import json, pathlib, ipykernel\n"
                          "info = json.loads(ipykernel.get_connection_info())\n"
                          "pathlib.Path(run_dir, 'kernel.json').write_text(json.dumps(info))")
    run = RunDir(tmp_path / "run")
    report.run_notebook(path, run, {"run_dir": str(run.path)}, cell_timeout=60,
                        notebook_timeout=120)
    info = json.loads((run.path / "kernel.json").read_text())
    # no TCP port that a kernel starting beside it could also be handed
    assert info["transport"] == "ipc" and info["ip"].startswith("/")
    assert not Path(info["ip"]).parent.exists()
