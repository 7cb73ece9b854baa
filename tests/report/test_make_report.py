"""`python -m lab report` end to end on a real stack: the stack notebook runs, the write-up
is exported to HTML and PDF, and the write-up reads the run's own data. (The whole quick
profile takes too long for the test suite; this runs the first topic and the write-up.)"""
import json
import re
import shutil
import subprocess
import sys

import pytest

from lab.rundir import REPO_DIR, RUNS_DIR

pytestmark = [pytest.mark.slow, pytest.mark.stack]


def test_report_runs_notebooks_and_exports_the_write_up(tmp_path):
    run_id = f"test-report-{tmp_path.name}"
    completed = subprocess.run(
        [sys.executable, "-m", "lab", "report", "--profile", "quick", "--only", "01", "99",
         "--run-id", run_id, "--writeup-dir", tmp_path], cwd=REPO_DIR, capture_output=True, text=True, timeout=900)
    run = RUNS_DIR / run_id
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "[1/2] 01_stack ... ok" in completed.stdout
    html = (tmp_path / "report.html").read_text()
    summary = json.loads((run / "stack" / "summary.json").read_text())
    # a figure of this run's data is in the text, and no code and nothing from the network
    assert f"{summary['rss_mb']:.0f} MB" in html
    assert "import pandas" not in html
    external = re.findall(r"(?:src|href)=\"(https?://[^\"]*)\"", html)
    assert [url for url in external if not re.match(r"https?://(127\.0\.0\.1|localhost)[:/]", url)] == []
    pdf = tmp_path / "report.pdf"
    assert pdf.read_bytes()[:4] == b"%PDF"
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert int(re.search(r"Pages:\s+(\d+)", pages).group(1)) >= 3
    shutil.rmtree(run)  # kept only when the test fails, to look at
