"""Running a pytest suite from a notebook and turning its JUnit XML into a table."""
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pandas as pd

from .rundir import REPO_DIR

OUTCOMES = ("passed", "failed", "error", "skipped")


def junit_cases(junit_xml):
    """One row per test case: module, test, seconds, outcome, message."""
    rows = []
    for case in ElementTree.parse(junit_xml).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = (child.get("message") or "").splitlines()[0][:200] if child.get("message") else ""
        rows.append({"module": case.get("classname", ""), "test": case.get("name", ""),
                     "seconds": float(case.get("time") or 0), "outcome": outcome,
                     "message": message})
    return pd.DataFrame(rows, columns=["module", "test", "seconds", "outcome", "message"])


def summary(cases):
    """Counts per outcome, and the same per module (the unit the tree mirrors)."""
    counts = {outcome: int((cases["outcome"] == outcome).sum()) for outcome in OUTCOMES}
    counts["total"] = len(cases)
    counts["seconds"] = round(float(cases["seconds"].sum()), 2)
    per_module = (cases.assign(n=1).pivot_table(index="module", columns="outcome", values="n",
                                                aggfunc="sum", fill_value=0)
                  .reindex(columns=[o for o in OUTCOMES if o in set(cases["outcome"])],
                           fill_value=0))
    return counts, per_module


# pytest's exit codes that mean no test ran at all
# https://docs.pytest.org/en/stable/reference/exit-codes.html
PYTEST_RAN_NOTHING = {4: "a usage error, e.g. an unknown marker", 5: "no test was collected"}


def run_pytest(run, topic, paths, name, extra=(), timeout=900, env=None):
    """Runs pytest on `paths` with JUnit XML and a log in the topic's folder. Returns
    (cases frame, counts, the console output). A failing suite does not raise: the notebook
    shows what failed."""
    junit = run.topic(topic) / f"{name}.junit.xml"
    argv = [sys.executable, "-m", "pytest", *paths, f"--junitxml={junit}", "-p", "no:cacheprovider", "--color=no",
            "-q", *extra]
    completed, output = run.run(topic, argv, f"run the {name.replace('_', ' ')}",
                                log_name=f"{name}.pytest", timeout=timeout, env=env, check=False,
                                cwd=REPO_DIR)
    if not Path(junit).exists():
        raise RuntimeError(f"pytest wrote no JUnit XML (exit {completed.returncode}):\n{output[-3000:]}")
    if completed.returncode in PYTEST_RAN_NOTHING:  # not a result to show: "0 of 0 passed"
        raise RuntimeError(f"pytest ran no test ({PYTEST_RAN_NOTHING[completed.returncode]}, "
                           f"exit {completed.returncode}):\n{output[-3000:]}")
    cases = junit_cases(junit)
    counts, _ = summary(cases)
    counts["exit_code"] = completed.returncode
    run.save_json(topic, f"{name}.summary", counts)
    cases.to_csv(run.topic(topic) / f"{name}.cases.csv", index=False)
    return cases, counts, output
