"""`python -m lab report --profile quick` end to end: every notebook runs on real stacks, the
write-up is exported to HTML and PDF, and its text carries the run's own figures.

It takes under four minutes, so it has its own marker: CI runs it with the rest of `make
test`; deselect it locally with `pytest -m "not report"`."""
import html as html_escapes
import json
import re
import shutil
import subprocess
import sys

import psutil
import pytest

from lab.report import notebooks
from lab.rundir import REPO_DIR, RUNS_DIR

pytestmark = [pytest.mark.report, pytest.mark.slow, pytest.mark.stack]

SECTIONS = ["What was done", "The stack", "docker-compose.yml", "The HAProxy configuration",
            "Unit tests", "Integration tests with Selenium", "Caching with Redis",
            "Performance testing with locust", "Load balancing", "Hosting",
            "Reliability and security", "Every command line", "The code"]


def page_text(page):
    """The HTML's visible text, inline markup dropped, whitespace collapsed."""
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.DOTALL)
    page = re.sub(r"</?(strong|em|code|a|span)\b[^>]*>", "", page)
    return re.sub(r"\s+", " ", html_escapes.unescape(re.sub(r"<[^>]+>", " ", page)))


def markdown_sentences(markdown):
    """The sentences of a summary's Markdown text, as plain text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"\s+", " ", re.sub(r"[*`]", "", text)).strip()
    return [sentence for sentence in re.split(r"(?<=[.;:])\s", text) if sentence]


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """One quick report run: (its console output, its run directory, the write-up folder)."""
    writeup = tmp_path_factory.mktemp("writeup")
    run_id = f"test-report-{writeup.name}"
    completed = subprocess.run(
        [sys.executable, "-m", "lab", "report", "--profile", "quick", "--run-id", run_id,
         "--writeup-dir", writeup], cwd=REPO_DIR, capture_output=True, text=True, timeout=900)
    run = RUNS_DIR / run_id
    assert completed.returncode == 0, completed.stdout + completed.stderr
    yield completed.stdout, run, writeup
    shutil.rmtree(run)  # kept only when a test fails, to look at


def test_every_notebook_runs_and_the_stacks_are_stopped(quick_report):
    output, run, _ = quick_report
    for path in notebooks():
        assert re.search(rf"{path.stem}\b.*\.\.\. ok", output), output
        assert (run / "notebooks" / path.name).exists()
    assert re.search(r"done in \d+ s", output)
    assert not list(run.rglob("stack.json"))  # what a running stack keeps in its folder
    # nothing the run started is left (Redis and locust name files in the run's folder)
    left = [process.info for process in psutil.process_iter(["pid", "cmdline"])
            if str(run) in " ".join(process.info["cmdline"] or [])]
    assert left == []


def test_the_write_up_has_every_section_and_no_code_or_network_links(quick_report):
    _, _, writeup = quick_report
    page = (writeup / "report.html").read_text()
    headings = [page_text(heading).strip()
                for heading in re.findall(r"<h[23][^>]*>(.*?)</h[23]>", page, flags=re.DOTALL)]
    for section in SECTIONS:
        assert any(heading.startswith(section) for heading in headings), (section, headings)
    assert "did not produce results in this run" not in page
    assert "import pandas" not in page
    external = re.findall(r"(?:src|href)=\"(https?://[^\"]*)\"", page)
    assert [url for url in external
            if not re.match(r"https?://(127\.0\.0\.1|localhost)[:/]", url)] == []


def test_the_write_up_text_carries_the_figures_of_the_run(quick_report):
    _, run, writeup = quick_report
    text = page_text((writeup / "report.html").read_text())
    stack = json.loads((run / "stack" / "summary.json").read_text())
    assert f"{stack['rss_mb']:.0f} MB" in text
    for topic, name in (("unit_tests", "unit tests"), ("integration", "browser tests")):
        summary = json.loads(next((run / topic).glob("*.summary.json")).read_text())
        assert f"{summary['passed']} of {summary['total']} {name} passed" in text
    # the topics that write their own paragraph: every sentence of it, figures included
    for topic in ("caching", "perf", "hosting"):
        summary = json.loads((run / topic / "summary.json").read_text())
        missing = [sentence for sentence in markdown_sentences(summary["text"])
                   if sentence not in text]
        assert missing == [], topic


def test_the_pdf_is_printed_from_the_write_up(quick_report):
    _, _, writeup = quick_report
    pdf = writeup / "report.pdf"
    assert pdf.read_bytes()[:4] == b"%PDF"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert int(re.search(r"Pages:\s+(\d+)", info).group(1)) >= 20
    words = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "Caching with Redis" in words and "Every command line" in words
