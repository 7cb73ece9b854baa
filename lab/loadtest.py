"""Running load generators and the small servers of the ceiling experiment, as subprocesses
with bounded run times, their own CPU recorded, and every process stopped by its pid.

locust cannot run inside a Jupyter kernel (importing it monkey-patches the standard library
with gevent, which kills the kernel), so `run_locust` starts `locust --headless` and collects
what it writes: --csv (with --csv-full-history), --json-file, --html, and the locustfile's own
request log and meta file (tests/load/plumbing.py). `run_wrk` does the same for wrk."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psutil

from . import loadstats, traffic

REPO_DIR = Path(__file__).resolve().parent.parent
LOCUSTFILE = REPO_DIR / "tests" / "load" / "locustfile.py"
PROBE_LOCUSTFILE = REPO_DIR / "tests" / "load" / "probe.py"
GUNICORN_CONF = REPO_DIR / "infra" / "gunicorn.conf.py"
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_report.lua"
HAPROXY_CEILING_CFG = Path(__file__).resolve().parent / "haproxy_ceiling.cfg"
# A machine this busy before a run starts is shared with something else (another test suite,
# a build): the run's figures are then a lower bound, and its rows say so.
BUSY_MACHINE_PCT = 25.0
# Share of the locustfile's users that are sellers (who log in); a run passes it to locust
# (LOAD_SELLER_SHARE), so the lab knows how many log-ins a load sends.
SELLER_SHARE = 0.05
# When a run's shape ends, the longest a user may take to finish its request in flight: the
# locustfile's longest network timeout (a seller's log-in, 15 s) and a second to record it.
STOP_TIMEOUT_S = 16


def _venv_tool(name):
    """A console script of the Python running this code (the venv's), else one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} is not installed (make venv / make system)")
    return found


def free_port(host="127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_for_http(url, *, timeout=15.0, process=None):
    """Polls a URL until it answers (any HTTP status); fails early if `process` died."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError as error:
            last_error = error
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s ({last_error})")


def stop_process(process: subprocess.Popen, timeout=5.0):
    """SIGTERM, then SIGKILL, to the process group a child was started in (its own, made with
    start_new_session), so workers the child forked go too."""
    if process.poll() is not None:
        return process.returncode
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return process.wait(timeout=timeout)


def _record(run_dir, argv, purpose, returncode, seconds, log):
    """Adds the command to the run's command list when run_dir is a lab.rundir.RunDir."""
    record = getattr(run_dir, "record_command", None)
    if record is not None:
        record("perf", argv, purpose, returncode, seconds, log)


# --- the generator's own CPU ------------------------------------------------------------------

class CpuSampler:
    """Samples the CPU use of a process and all its descendants every `interval` seconds in a
    background thread (a notebook cannot block while locust runs in another process anyway).
    cpu_pct is a share of one core (100 means one core fully busy); machine_cpu_pct is the
    whole machine's use (100 means every core busy), which tells a saturated generator from
    a saturated machine that the generator shares with the stack."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float, int, float]] = []
        self._known: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._sample()  # primes cpu_percent (its first call has nothing to compare with)
        self.samples.clear()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def _processes(self):
        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for process in tree:
            self._known.setdefault(process.pid, process)
        return [self._known[process.pid] for process in tree]

    def _sample(self):
        total, alive = 0.0, 0
        for process in self._processes():
            try:
                total += process.cpu_percent(None)
                alive += 1
            except psutil.NoSuchProcess:
                continue
        machine = psutil.cpu_percent(None)
        if alive:
            self.samples.append((time.time(), total, alive, machine))

    def _run(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def frame(self, t0_epoch: float | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(self.samples,
                             columns=["epoch", "cpu_pct", "processes", "machine_cpu_pct"])
        origin = t0_epoch if t0_epoch is not None else (self.samples[0][0] if self.samples
                                                        else 0.0)
        frame.insert(0, "t_s", frame["epoch"] - origin)
        return frame


# --- locust ------------------------------------------------------------------------------------

@dataclass
class LocustRun:
    """Where one locust run's files are, and how the run went. `prefix` is the --csv prefix:
    <prefix>_stats.csv, _stats_history.csv, _failures.csv, _exceptions.csv, <prefix>.json,
    <prefix>.html, _requests.csv, _meta.json, _cpu.csv and <prefix>.log (locust's output)."""
    name: str
    prefix: Path
    returncode: int
    wall_s: float
    command: list = field(default_factory=list)
    background_cpu_pct: float = float("nan")  # the machine's CPU use just before the run

    @classmethod
    def open(cls, prefix) -> "LocustRun":
        """A run already on disk (from its --csv prefix), to analyse it again."""
        prefix = Path(prefix)
        lab = loadstats.read_meta(prefix).get("lab", {})
        return cls(prefix.name, prefix, lab.get("returncode", 0), lab.get("wall_s", math.nan),
                   lab.get("command", []), lab.get("background_cpu_pct", math.nan))

    @property
    def meta(self) -> dict:
        return loadstats.read_meta(self.prefix)

    def stages(self) -> pd.DataFrame:
        return loadstats.stages_frame(self.meta)

    def requests(self) -> pd.DataFrame:
        return loadstats.read_requests(self.prefix)

    def history(self) -> pd.DataFrame:
        return loadstats.read_history(self.prefix, self.meta.get("t0_epoch"))

    def totals(self) -> pd.DataFrame:
        return loadstats.read_stats_json(self.prefix)

    def cpu(self) -> pd.DataFrame:
        return loadstats.read_cpu(f"{self.prefix}_cpu.csv")

    def steps(self, settle_s: float | None = None) -> pd.DataFrame:
        return loadstats.step_summary(self.requests(), self.stages(), settle_s=settle_s,
                                      cpu=self.cpu())

    def generator(self) -> dict:
        """The generator's verdict over the measured part of the run (warm-up left out)."""
        stages = self.stages()
        measured = stages[stages["phase"] == "step"]
        verdict = loadstats.generator_verdict(self.cpu(), float(measured["start_s"].min()),
                                              float(measured["end_s"].max()))
        verdict["background_cpu_pct"] = self.background_cpu_pct
        verdict["machine_was_busy"] = bool(self.background_cpu_pct >= BUSY_MACHINE_PCT)
        return verdict

    def log_text(self) -> str:
        path = Path(f"{self.prefix}.log")
        return path.read_text(errors="replace") if path.exists() else ""

    def locust_cpu_warning(self) -> bool:
        """locust's own warning, a second opinion on the generator's CPU."""
        return "CPU usage above" in self.log_text()


def run_locust(out_dir, name, host, shape: traffic.StepLoad, *, locustfile=LOCUSTFILE,
               think_time: tuple[float, float] | None = None, env: dict | None = None,
               user_classes=(), run_dir=None, startup_slack_s: float = 60.0,
               cpu_interval_s: float = 0.5) -> LocustRun:
    """Runs one headless locust test to the end of its step-load shape (and never longer than
    the shape plus `startup_slack_s`) and returns where its files are."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / name
    for stale in out_dir.glob(f"{name}_*"):
        stale.unlink()
    host = host.rstrip("/")  # locust joins paths onto it: "http://h/" + "/" is "//"
    argv = [_venv_tool("locust"), "-f", str(locustfile), "--headless", "--host", host,
            "--csv", str(prefix), "--csv-full-history", "--json-file", str(prefix),
            "--html", f"{prefix}.html", "--only-summary", "--loglevel", "INFO",
            # failures are data here, not a reason for a non-zero exit
            "--exit-code-on-error", "0",
            # when the shape ends, let each user finish its request in flight (at most the
            # locustfiles' network timeout): a request locust stops mid-way is never
            # recorded, so a run that ends on hung requests would look fast and clean
            "--stop-timeout", str(STOP_TIMEOUT_S), *user_classes]
    child_env = {**os.environ, **shape.to_env(), "LOAD_OUTPUT_PREFIX": str(prefix),
                 "PYTHONUNBUFFERED": "1",
                 traffic.ENV_SELLER_SHARE: os.environ.get(traffic.ENV_SELLER_SHARE)
                 or str(SELLER_SHARE), **(env or {})}
    if think_time is not None:
        child_env[traffic.ENV_WAIT] = f"{think_time[0]},{think_time[1]}"
    limit = shape.duration_s + startup_slack_s + 90  # 90: the locustfile's set-up timeout
    # The machine's CPU use just before the load starts: on a shared two-core machine another
    # job can take half of it, and every figure of the run would be low without this to say so.
    background = psutil.cpu_percent(interval=0.5)
    started = time.monotonic()
    with open(f"{prefix}.log", "w") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=child_env,
                                   cwd=REPO_DIR, start_new_session=True)
        try:
            with CpuSampler(process.pid, cpu_interval_s) as sampler:
                try:
                    returncode = process.wait(timeout=limit)
                except subprocess.TimeoutExpired:
                    stop_process(process)
                    raise TimeoutError(f"locust {name} ran past {limit:.0f} s; stopped it")
        finally:
            stop_process(process)
    wall = round(time.monotonic() - started, 2)
    _record(run_dir, argv, f"locust step load: {name}", returncode, wall, f"{prefix}.log")
    meta_path = Path(f"{prefix}_meta.json")
    if not meta_path.exists():
        tail = "\n".join(Path(f"{prefix}.log").read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"locust {name} exited {returncode} without its results:\n{tail}")
    meta = json.loads(meta_path.read_text())
    # what only the lab knows goes beside what the locustfile wrote, so a run on disk can be
    # analysed again (LocustRun.open) with nothing lost
    meta["lab"] = {"returncode": returncode, "wall_s": wall, "command": argv,
                   "background_cpu_pct": background}
    meta_path.write_text(json.dumps(meta, indent=2))
    t0 = meta.get("t0_epoch")
    sampler.frame(t0).to_csv(f"{prefix}_cpu.csv", index=False)
    if t0 is None:
        tail = "\n".join(Path(f"{prefix}.log").read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"locust {name}: the locustfile's set-up never finished, so no "
                           f"load was measured:\n{tail}")
    return LocustRun(name, prefix, returncode, wall, argv, background)


# --- wrk ---------------------------------------------------------------------------------------

def run_wrk(out_dir, name, url, *, connections=16, seconds=5.0, threads=1, run_dir=None,
            timeout_s=5.0) -> dict:
    """One wrk run with --latency and the Lua report (p95, p99.9); returns the parsed report
    with the tool's own CPU use and a saturation flag (wrk is one process; `threads` event
    loops can use as many cores)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
            "--latency", "--timeout", f"{timeout_s:g}s", "-s", str(WRK_SCRIPT), url]
    background = psutil.cpu_percent(interval=0.5)  # see run_locust
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        with CpuSampler(process.pid, 0.25) as sampler:
            output, _ = process.communicate(timeout=seconds + timeout_s + 15)
    except subprocess.TimeoutExpired:
        stop_process(process)
        raise TimeoutError(f"wrk {name} ran past its time; stopped it")
    finally:
        stop_process(process)
    wall = round(time.monotonic() - started, 2)
    log = out_dir / f"{name}_wrk.txt"
    log.write_text(output)
    _record(run_dir, argv, f"wrk: {name}", process.returncode, wall, log)
    if process.returncode != 0:
        raise RuntimeError(f"wrk {name} exited {process.returncode}:\n{output[-2000:]}")
    cpu = sampler.frame()
    cpu.to_csv(out_dir / f"{name}_wrk_cpu.csv", index=False)
    result = {"name": name, **loadstats.parse_wrk(output)}
    # the first and last quarter second are start-up and shutdown, not load
    verdict = loadstats.generator_verdict(cpu, 0.25, seconds - 0.25,
                                          threshold_pct=loadstats.GENERATOR_SATURATION_PCT
                                          * threads)
    result.update(verdict)
    result["background_cpu_pct"] = background
    result["machine_was_busy"] = bool(background >= BUSY_MACHINE_PCT)
    return result


# --- the ceiling's servers -----------------------------------------------------------------------

@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    log: Path


@contextmanager
def _server(name, argv, url, log, env=None, cwd=REPO_DIR, ready_timeout=15.0):
    with open(log, "w") as handle:
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, cwd=cwd,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        wait_for_http(url, timeout=ready_timeout, process=process)
        yield Server(name, url, process, Path(log))
    finally:
        stop_process(process)


@contextmanager
def constant_gunicorn(out_dir, *, port=None, workers=2, threads=4, body=b"ok\n"):
    """gunicorn serving lab.constant_page (the same bytes for every request) with the stack's
    own gunicorn configuration (infra/gunicorn.conf.py: gthread, keep-alive), so the only
    difference from a web instance is that no Django runs."""
    port = port or free_port()
    body_file = Path(out_dir) / "constant_body.txt"
    body_file.write_bytes(body)
    env = {"LAB_CONSTANT_BODY_FILE": str(body_file), "LAB_GUNICORN_BIND": f"127.0.0.1:{port}",
           "LAB_GUNICORN_WORKERS": str(workers), "LAB_GUNICORN_THREADS": str(threads)}
    argv = [_venv_tool("gunicorn"), "-c", str(GUNICORN_CONF), "lab.constant_page:app"]
    with _server("gunicorn-constant", argv, f"http://127.0.0.1:{port}/",
                 Path(out_dir) / "gunicorn_constant.log", env=env) as server:
        yield server


@contextmanager
def haproxy_ceiling(out_dir, *, backend_port, alone_port=None, proxied_port=None):
    """HAProxy with two frontends: one answering by itself (no backend at all) and one passing
    requests to `backend_port` (the constant gunicorn), to show what the proxy hop adds."""
    alone_port, proxied_port = alone_port or free_port(), proxied_port or free_port()
    env = {"LAB_CEILING_ALONE_PORT": str(alone_port),
           "LAB_CEILING_PROXIED_PORT": str(proxied_port),
           "LAB_CEILING_BACKEND": f"127.0.0.1:{backend_port}"}
    # -db: stay in the foreground, so the process we started is the one we stop
    argv = ["haproxy", "-db", "-f", str(HAPROXY_CEILING_CFG)]
    with _server("haproxy", argv, f"http://127.0.0.1:{alone_port}/",
                 Path(out_dir) / "haproxy_ceiling.log", env=env) as server:
        yield {"alone": f"http://127.0.0.1:{alone_port}/",
               "proxied": f"http://127.0.0.1:{proxied_port}/", "server": server}
