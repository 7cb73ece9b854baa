"""`make report` / `python -m lab report`: run every notebook with papermill into a new run
directory, then export the write-up notebook to writeup/report.html and report.pdf.

Each notebook runs in its own papermill process with a wall-clock limit, so a dead or hung
kernel cannot hang the run; a failing notebook stops the run with its name and failing cell.
Notebooks run one at a time, except the test-suite ones (SIDE_BY_SIDE), which measure nothing
and run together."""
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from .profiles import parameters as profile_parameters
from .rundir import REPO_DIR, RUNS_DIR, RunDir, new_run_id

NOTEBOOKS_DIR = REPO_DIR / "notebooks"
WRITEUP_DIR = REPO_DIR / "writeup"
WRITEUP_NOTEBOOK = "99_writeup"
CHROMIUM = "/usr/bin/chromium"


# Notebooks whose work is running test suites, not measuring speed, run side by side: on two
# cores the unit tests and the browser tests (each mostly one process) overlap well, and
# neither reports a timing figure that the other's CPU use would spoil.
SIDE_BY_SIDE = frozenset({"02_unit_tests", "03_integration_tests"})


class NotebookFailed(Exception):
    pass


def batches(selected):
    """`selected` in order, with neighbours that may run side by side in one batch."""
    grouped = []
    for path in selected:
        if grouped and path.stem in SIDE_BY_SIDE and all(
                other.stem in SIDE_BY_SIDE for other in grouped[-1]):
            grouped[-1].append(path)
        else:
            grouped.append([path])
    return grouped


def notebooks(only=None):
    found = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = set(only)
        found = [path for path in found if path.stem in wanted or path.stem[:2] in wanted]
    return found


def declared_parameters(path):
    """Names assigned in the notebook's cell tagged `parameters`."""
    import ast

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse(cell.source)
            return {target.id for node in tree.body if isinstance(node, ast.Assign)
                    for target in node.targets if isinstance(target, ast.Name)}
    return set()


def failing_cell(executed_path):
    """(index, source head, error) of the cell that raised, read from papermill's output."""
    try:
        notebook = nbformat.read(executed_path, as_version=4)
    except (OSError, ValueError):
        return None
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                head = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                return index, head, f"{output.get('ename')}: {output.get('evalue')}"
    return None


def run_notebook(path, run, values, cell_timeout, notebook_timeout):
    wanted = declared_parameters(path)
    given = {name: value for name, value in values.items() if name in wanted}
    out_dir = run.topic("notebooks")
    executed = out_dir / path.name
    params_file = out_dir / f"{path.stem}.parameters.json"
    params_file.write_text(json.dumps(given, indent=2))
    # papermill with the kernel on Unix sockets (see lab/execute_notebook.py: side-by-side
    # notebooks' kernels cannot collide on a TCP port)
    argv = [sys.executable, "-m", "lab.execute_notebook", path, executed, "--parameters",
            params_file, "--cwd", NOTEBOOKS_DIR, "--execution-timeout", str(cell_timeout)]
    try:
        completed, log = run.run("notebooks", argv, f"execute {path.name} with papermill",
                                 log_name=f"{path.stem}.papermill", timeout=notebook_timeout,
                                 check=False)
    except subprocess.TimeoutExpired:
        raise NotebookFailed(f"{path.name} did not finish within {notebook_timeout} s") from None
    failure = failing_cell(executed)
    if failure:
        index, head, error = failure
        raise NotebookFailed(f"{path.name} failed in cell {index} ({head!r}): {error}")
    if completed.returncode != 0:
        tail = "\n".join(log.splitlines()[-15:])
        raise NotebookFailed(f"{path.name}: papermill exited {completed.returncode}\n{tail}")
    return executed


def _run_batch(batch, run, values, cell_timeout, notebook_timeout, executed):
    """Runs the notebooks of one batch (side by side when there are several); returns
    ({stem: seconds}, [NotebookFailed of those that failed])."""
    from concurrent.futures import ThreadPoolExecutor

    def timed(path):
        began = time.monotonic()
        executed[path.stem] = run_notebook(path, run, values, cell_timeout, notebook_timeout)
        return time.monotonic() - began

    took, failures = {}, []
    with ThreadPoolExecutor(len(batch)) as pool:
        futures = {path.stem: pool.submit(timed, path) for path in batch}
    for stem, future in futures.items():
        try:
            took[stem] = future.result()
        except NotebookFailed as failure:
            failures.append(failure)
    return took, failures


def export_html(executed, destination):
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="template", extra_template_basedirs=[str(WRITEUP_DIR)],
                            exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_filename(str(executed))
    # The stock stylesheets cite their sources in comments; the report links nothing outside.
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.DOTALL)
    destination.write_text(body)
    return destination


def export_pdf(html, destination):
    """Chromium prints the offline HTML to PDF: no LaTeX needed."""
    with_profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"lab-pdf-{os.getpid()}"
    argv = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-quic", f"--user-data-dir={with_profile}",
            "--no-pdf-header-footer", f"--print-to-pdf={destination}", html.resolve().as_uri()]
    try:
        subprocess.run(argv, check=True, timeout=120, capture_output=True)
    finally:
        shutil.rmtree(with_profile, ignore_errors=True)
    return destination


def machine_facts():
    import psutil

    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR,
                                     capture_output=True, text=True).stdout.strip()}


def stop_leftover_stacks(run):
    """Whatever a failed notebook left running is stopped by pid (the infra package knows)."""
    try:
        from infra import stop_everything
    except ImportError:
        return
    stop_everything(run.path)


def _shown(path):
    return str(path.relative_to(REPO_DIR)) if path.is_relative_to(REPO_DIR) else str(path)


def report(profile="full", overrides=(), only=None, run_id=None, cell_timeout=900,
           notebook_timeout=1500, export=True, writeup_dir=WRITEUP_DIR, echo=print):
    values = profile_parameters(profile, overrides)
    run = RunDir(RUNS_DIR / (run_id or new_run_id()))
    values["run_dir"] = str(run.path)
    run.save_json(".", "parameters", {"profile": profile, "overrides": list(overrides),
                                      "values": values, "machine": machine_facts()})
    selected = notebooks(only)
    if not selected:
        raise SystemExit("no notebooks to run")
    echo(f"run {run.path.name}: {len(selected)} notebooks, profile {profile}, output in "
         f"{run.path.relative_to(REPO_DIR)}")
    started = time.monotonic()
    executed = {}
    number = 0
    try:
        for batch in batches(selected):
            first, number = number + 1, number + len(batch)
            began = time.monotonic()
            label = f"{first}-{number}" if len(batch) > 1 else f"{first}"
            echo(f"[{label}/{len(selected)}] {' + '.join(path.stem for path in batch)}"
                 + (" (side by side)" if len(batch) > 1 else "") + " ...", end="", flush=True)
            took, failures = _run_batch(batch, run, values, cell_timeout, notebook_timeout,
                                        executed)
            if failures:
                echo(" FAILED")
                raise failures[0]
            echo(" ok (" + ", ".join(f"{seconds:.1f} s" if len(batch) == 1 else
                                     f"{stem[:2]} {seconds:.1f} s"
                                     for stem, seconds in took.items())
                 + (f"; {time.monotonic() - began:.1f} s in all)" if len(batch) > 1 else ")"))
    finally:
        stop_leftover_stacks(run)
    outputs = []
    if export and WRITEUP_NOTEBOOK in executed:
        writeup_dir = Path(writeup_dir)
        writeup_dir.mkdir(parents=True, exist_ok=True)
        html = export_html(executed[WRITEUP_NOTEBOOK], writeup_dir / "report.html")
        pdf = export_pdf(html, writeup_dir / "report.pdf")
        for path in (html, pdf):
            shutil.copy2(path, run.path / path.name)
        outputs = [html, pdf]
    echo(f"done in {time.monotonic() - started:.0f} s: "
         + (", ".join(_shown(path) for path in outputs) or "no export")
         + f"; run data in {run.path.relative_to(REPO_DIR)}")
    return run, outputs
