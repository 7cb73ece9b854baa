"""The page cache benchmark (issue 4): the cache modes measured in one run on this machine, and
the ratios the issue sets as targets computed from those measurements, never typed in.

    python -m lab.cache_benchmark [--profile quick|full] [--modes off,invalidate]
                                  [--duration 3] [--output result.json]

What it does, each step bounded in time and aimed only at 127.0.0.1:

1. It starts one stack per mode (off, ttl, invalidate, django; infra.Stack with
   ``cache=MODE``, each on its own ports with its own run directory, Redis and database), side
   by side (`running_stacks`), or uses stacks the caller started, and warms the home page
   until it is a hit. The invalidate stack's page gives the bytes below. (Every web instance
   serves plain hits through the page cache's WSGI fast path, app/marketplace/wsgi.py: the
   rows measure the site as it runs.)
2. Beside them: a "constant" gunicorn serving the cached home page's exact bytes
   (lab/constant_page.py) under the web tier's gunicorn configuration (infra/gunicorn.conf.py,
   same workers and threads), behind its own HAProxy running the stack's haproxy.cfg with the
   same UDP log receiver. So every "via haproxy" row goes through the same proxy set-up.
3. ``wrk --latency`` on the home page, round-robin over every row, ``rounds`` times: each
   stack's HAProxy and the constant app's, and with ``direct`` also the invalidate stack's web
   instance and the constant app without HAProxy.
4. Staleness, in the ``staleness_modes`` that were started (invalidate, ttl, django): a writer
   creates listings through the experience API and edits one through the entity API while
   readers GET the pages they change (home, the listing, its seller, a search). A read is
   stale when it was sent after a write had returned and does not show that write (or a later
   one).

``PROFILES`` holds what a quick and a full run measure (``planned_seconds`` says how long
each takes). ``run()`` returns a JSON-able dict (no pandas needed): ``rows`` (one per
measurement, medians of its rounds; every run is under ``samples``), ``staleness`` (one per
mode), ``counters`` (the page cache's own hit/miss/... per mode) and ``targets`` (each
target's measured value and whether it is met; a target whose modes were not run says so).

Throughput on a shared machine depends on what else runs at the time, so every wrk run also
records the CPU seconds the serving processes spent per request (psutil, the processes and
their children). Ratios of CPU per request estimate the throughput ratios a machine of our
own would show; they are reported beside the measured ratios, labelled as estimates."""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
MODES = ("off", "ttl", "invalidate", "django")
STALENESS_MODES = ("invalidate", "ttl", "django")  # off has no cache to be stale
# Every benchmark stack: one web instance (its hits are what is measured), the tiers behind it
# as the stack makes them, and a TTL longer than any run, so only invalidation changes a page.
STACK_OPTIONS = {"web": 1, "workers": 2, "threads": 4, "cache_ttl": 600}


@dataclass(frozen=True)
class BenchmarkProfile:
    name: str
    modes: tuple  # one stack per mode
    seconds: float  # per wrk run
    rounds: int  # wrk runs per row, interleaved; rows are medians
    # also the invalidate stack's web instance and the constant app without HAProxy (the
    # comparison falls back on them if the constant app's HAProxy cannot start)
    direct: bool
    staleness_modes: tuple
    staleness_seconds: float

    def row_count(self) -> int:
        """How many rows wrk measures: each mode behind HAProxy, the constant app behind
        HAProxy, and the two direct rows."""
        return len(self.modes) + ("invalidate" in self.modes) * (1 + 2 * self.direct)


PROFILES = {
    # a first look: hits against no cache and against the constant bytes, and staleness with
    # invalidation, in about twenty seconds
    "quick": BenchmarkProfile("quick", modes=("off", "invalidate"), seconds=2, rounds=1,
                              direct=False, staleness_modes=("invalidate",),
                              staleness_seconds=2),
    # the write-up: every mode, three interleaved rounds, staleness of every cached mode
    "full": BenchmarkProfile("full", modes=MODES, seconds=3, rounds=3, direct=True,
                             staleness_modes=STALENESS_MODES, staleness_seconds=5),
}


def get_profile(profile="quick", **overrides) -> BenchmarkProfile:
    """A named profile (or a BenchmarkProfile) with the overrides that are not None or empty
    replaced (a notebook's parameters: None means "the profile's"); modes may be given as
    "off,invalidate"."""
    base = PROFILES[profile] if isinstance(profile, str) else profile
    changes = {key: value for key, value in overrides.items() if value not in (None, "", ())}
    for key in ("modes", "staleness_modes"):
        if isinstance(changes.get(key), str):
            changes[key] = tuple(mode.strip() for mode in changes[key].split(",")
                                 if mode.strip())
    unknown = set(changes.get("modes", ())) - set(MODES)
    if unknown:
        raise ValueError(f"unknown modes {sorted(unknown)}; modes are {', '.join(MODES)}")
    return replace(base, **changes) if changes else base


def planned_seconds(profile) -> float:
    """The benchmark's time budget: the configured wrk and staleness durations plus a stack
    start for each mode (lab.perf.STACK_START_S, what one costs on a quiet two-core machine;
    the stacks start side by side, so this is an upper bound)."""
    from .perf import STACK_START_S

    profile = get_profile(profile)
    staleness = [mode for mode in profile.staleness_modes if mode in profile.modes]
    return (len(profile.modes) * STACK_START_S
            + profile.rounds * profile.row_count() * profile.seconds
            + len(staleness) * profile.staleness_seconds)

# --- wrk ------------------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_DURATION = r"([\d.]+)(us|ms|s|m)"


def _ms(value, unit):
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> dict:
    """The numbers of a `wrk --latency` report: requests, seconds, requests/s, latency
    percentiles and mean in ms, non-2xx/3xx answers and socket errors."""
    result = {"requests": None, "seconds": None, "requests_per_s": None, "latency_ms": {},
              "latency_mean_ms": None, "latency_max_ms": None, "non_2xx_3xx": 0,
              "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}}
    match = re.search(rf"Latency\s+{_DURATION}\s+{_DURATION}\s+{_DURATION}", output)
    if match:
        result["latency_mean_ms"] = _ms(*match.group(1, 2))
        result["latency_max_ms"] = _ms(*match.group(5, 6))
    for percent, value, unit in re.findall(rf"^\s+([\d.]+)%\s+{_DURATION}\s*$", output, re.M):
        result["latency_ms"][f"p{float(percent):g}"] = _ms(value, unit)
    match = re.search(rf"(\d+) requests in {_DURATION}", output)
    if match:
        result["requests"] = int(match.group(1))
        result["seconds"] = _ms(*match.group(2, 3)) / 1000
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match:
        result["requests_per_s"] = float(match.group(1))
    match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if match:
        result["non_2xx_3xx"] = int(match.group(1))
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      output)
    if match:
        result["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                           map(int, match.groups())))
    if result["requests_per_s"] is None:
        raise ValueError(f"not a wrk report:\n{output[-2000:]}")
    return result


def wrk_command(url, *, threads=2, connections=16, duration=5, timeout=5):
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"the benchmark only sends traffic to this machine, not {url}")
    return ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", f"--timeout",
            f"{timeout}s", "--latency", url]


def run_wrk(url, *, threads=2, connections=16, duration=5):
    command = wrk_command(url, threads=threads, connections=connections, duration=duration)
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30,
                               check=True)
    result = parse_wrk(completed.stdout)
    result.update(url=url, command=" ".join(command))
    return result


# --- small helpers --------------------------------------------------------------------------

def _http():
    import httpx

    return httpx.Client(timeout=10.0)


def warm(client, url, *, want=("HIT",), attempts=50):
    """GETs `url` until its X-Cache is one of `want` (or `attempts` are spent); returns the
    last response. Each attempt is a real request: no sleeping."""
    response = None
    for _ in range(attempts):
        response = client.get(url)
        response.raise_for_status()
        if response.headers.get("X-Cache") in want:
            return response
    return response


def stop_group(process, timeout=5.0):
    """SIGTERM then SIGKILL to the process group the child leads (gunicorn and its workers)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass


def cpu_seconds(pids):
    """User + system CPU seconds used so far by the processes `pids` and their children."""
    import psutil

    total = 0.0
    for pid in pids:
        if pid is None:
            continue
        try:
            parent = psutil.Process(pid)
            tree = [parent, *parent.children(recursive=True)]
        except psutil.Error:
            continue
        for process in tree:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
    return total


def measured_wrk(url, pids, **wrk):
    """run_wrk, plus the CPU the serving processes spent per request meanwhile: unlike
    requests/s, that barely depends on what else the machine is doing at the time."""
    before = cpu_seconds(pids)
    result = run_wrk(url, **wrk)
    spent = cpu_seconds(pids) - before
    result["server_cpu_s"] = spent
    result["cpu_ms_per_request"] = (spent * 1000 / result["requests"]
                                    if result["requests"] else None)
    return result


# --- the constant app behind HAProxy -------------------------------------------------------

def start_haproxy_for(backend_port: int, folder: Path, config, credentials):
    """The stack's own haproxy.cfg and its UDP log receiver (infra.log_receiver: the stack's
    HAProxy logs every request to it, which costs CPU too), on free ports, with the constant
    app (answering with X-Served-By: constant) as the only web server. The other tiers'
    servers point nowhere and are marked down by the health checks, which do not touch the web
    frontend. Returns ([haproxy, log receiver], web frontend URL)."""
    from infra import free_port_offset, load_balancer

    served_by = "constant"  # lab/constant_page.py's X-Served-By

    moved = config.replace(web=1, port_offset=free_port_offset(config.replace(web=1)))
    receiver = subprocess.Popen(
        [sys.executable, "-m", "infra.log_receiver", "--port", str(moved.log_receiver_port),
         "--output", str(folder / f"haproxy-{served_by}-access.log")],
        cwd=REPO_DIR, env={**os.environ, "PYTHONPATH": str(REPO_DIR)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           **load_balancer.environment(moved, credentials)}
    env[load_balancer.server_variable("web", 1)] = f"127.0.0.1:{backend_port}"
    try:
        load_balancer.check_config(env)
    except Exception:
        stop_group(receiver)
        raise
    log = open(folder / f"haproxy-{served_by}.log", "ab")
    process = subprocess.Popen(
        [load_balancer.HAPROXY_BIN, "-db", "-f", str(load_balancer.HAPROXY_CFG)], env=env,
        cwd=REPO_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    url = f"http://127.0.0.1:{moved.frontend_port('web')}/"
    import httpx

    deadline = time.monotonic() + 20
    while True:  # until HAProxy marks our server up and routes to it
        if process.poll() is not None or receiver.poll() is not None:
            stop_group(process)
            stop_group(receiver)
            raise RuntimeError("haproxy or its log receiver exited")
        try:
            if httpx.get(url, timeout=1.0).headers.get("X-Served-By") == served_by:
                return [process, receiver], url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_group(process)
            stop_group(receiver)
            raise TimeoutError(f"{served_by} never came up behind HAProxy")
        time.sleep(0.1)


# --- staleness ------------------------------------------------------------------------------

class WriteLog:
    """What the writer has finished: the number of creates and of edits whose response came
    back. A reader notes both before it sends its request."""

    def __init__(self):
        self.creates = 0
        self.edits = 0
        self.lock = threading.Lock()

    def snapshot(self):
        with self.lock:
            return self.creates, self.edits


def marker(run, kind, number):
    """A word that only this run's write number `number` puts on a page."""
    return f"zq{run}{kind}{number:05d}z"


def newest_marker(body: str, run: str, kind: str) -> int:
    """The highest write number of `kind` this run left in `body` (0 when none)."""
    found = re.findall(rf"zq{re.escape(run)}{kind}(\d{{5}})z", body)
    return max(map(int, found), default=0)


def _with_retries(send, attempts=5, delay=0.5, done_if=lambda response: False):
    """The set-up of the staleness run, retried on 503s and timeouts: a busy machine can make
    one call fail, which should not cost the whole measurement."""
    import httpx

    for attempt in range(1, attempts + 1):
        try:
            response = send()
            if done_if(response):
                return response
            response.raise_for_status()
            return response
        except httpx.HTTPStatusError as error:
            if error.response.status_code != 503 or attempt == attempts:
                raise
        except httpx.TransportError:
            if attempt == attempts:
                raise
        time.sleep(delay * attempt)


def measure_staleness(stack, *, duration=8.0, readers=4, write_interval=0.2):
    """Readers GET the pages a writer's writes change, for `duration` seconds; returns counts
    of reads, stale reads (sent after a write returned, not showing it), errors and X-Cache."""
    import httpx

    run = secrets.token_hex(3)
    exp = httpx.Client(base_url=stack.experience_url, timeout=30.0)
    entity = httpx.Client(base_url=stack.entity_url, timeout=30.0,
                          headers={"X-Service-Token": stack.service_token})
    name = f"bench{run}"
    password = secrets.token_urlsafe(12) + "-A1"
    signed = _with_retries(lambda: exp.post(
        "/exp/v1/signup", json={"username": name, "email": f"{name}@example.com",
                                "password": password, "password_confirm": password}),
        done_if=lambda response: response.status_code == 409)  # an earlier try got through
    if signed.status_code == 409:
        signed = _with_retries(lambda: exp.post(
            "/exp/v1/login", json={"username": name, "password": password}))
    session = signed.json()["data"]
    bearer = {"Authorization": f"Bearer {session['token']}"}
    seller_id = session["user"]["id"]
    created = _with_retries(lambda: exp.post(
        "/exp/v1/listings", headers=bearer,
        json={"title": f"{marker(run, 'e', 0)} probe", "description": "probe",
              "price": "1.00"}))
    listing_id = created.json()["data"]["listing"]["id"]

    pages = {"home": ("/", "c"), "listing": (f"/listings/{listing_id}", "e"),
             "seller": (f"/sellers/{seller_id}", "c"), "search": (f"/search?q=zq{run}", "c")}
    log = WriteLog()
    stop = threading.Event()
    lock = threading.Lock()
    tally = {"reads": 0, "checked": 0, "stale": 0, "errors": 0,
             "stale_by_page": Counter(), "x_cache": Counter(), "examples": []}

    def reader(offset):
        client = httpx.Client(base_url=stack.web_url, timeout=10.0)
        names = list(pages)
        index = offset
        while not stop.is_set():
            page = names[index % len(names)]
            index += 1
            path, kind = pages[page]
            creates, edits = log.snapshot()
            required = creates if kind == "c" else edits
            try:
                response = client.get(path)
            except httpx.HTTPError:
                with lock:
                    tally["errors"] += 1
                continue
            shown = newest_marker(response.text, run, kind)
            with lock:
                tally["reads"] += 1
                tally["x_cache"][response.headers.get("X-Cache", "none")] += 1
                if response.status_code != 200:
                    tally["errors"] += 1
                    continue
                if required:
                    tally["checked"] += 1
                    if shown < required:
                        tally["stale"] += 1
                        tally["stale_by_page"][page] += 1
                        if len(tally["examples"]) < 5:
                            tally["examples"].append({"page": page, "required": required,
                                                      "shown": shown,
                                                      "x_cache": response.headers.get(
                                                          "X-Cache")})
        client.close()

    threads = [threading.Thread(target=reader, args=(number,), daemon=True)
               for number in range(readers)]
    for thread in threads:
        thread.start()
    writes = Counter()
    deadline = time.monotonic() + duration
    number = 0
    try:
        while time.monotonic() < deadline:
            number += 1
            kind = "create" if number % 2 else "edit"
            index = (number + 1) // 2
            try:
                if kind == "create":
                    done = exp.post("/exp/v1/listings", headers=bearer, json={
                        "title": f"{marker(run, 'c', index)} probe", "description": "probe",
                        "price": "2.00"})
                else:
                    done = entity.patch(f"/entity/v1/listings/{listing_id}", json={
                        "title": f"{marker(run, 'e', index)} probe"})
                done.raise_for_status()
            except httpx.HTTPError:
                # Whether it committed is unknown: it never "returned", so it sets no
                # requirement for the readers, and later writes supersede it.
                writes[f"{kind}_failed"] += 1
                continue
            with log.lock:
                if kind == "create":
                    log.creates = index
                else:
                    log.edits = index
            writes[kind] += 1
            stop.wait(write_interval)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        exp.close()
        entity.close()
    return {"reads": tally["reads"], "reads_after_a_write": tally["checked"],
            "stale_reads": tally["stale"], "errors": tally["errors"],
            "stale_by_page": dict(tally["stale_by_page"]), "x_cache": dict(tally["x_cache"]),
            "writes": dict(writes), "examples": tally["examples"], "seconds": duration,
            "readers": readers}


# --- the whole run --------------------------------------------------------------------------

def _cache_counters(stack, mode):
    if mode not in ("ttl", "invalidate"):
        return None
    sys.path.insert(0, str(REPO_DIR / "app"))
    from web.pagecache import stats

    return stats.read_totals(stack.redis_url, mode)


def _median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def summarize(label, mode, samples):
    """One row from the wrk runs of one measurement: medians over its rounds."""
    return {"label": label, "mode": mode, "rounds": len(samples),
            "requests_per_s": _median([sample["requests_per_s"] for sample in samples]),
            "p50_ms": _median([sample["latency_ms"].get("p50", 0.0) for sample in samples]),
            "p99_ms": _median([sample["latency_ms"].get("p99", 0.0) for sample in samples]),
            "mean_ms": _median([sample["latency_mean_ms"] or 0.0 for sample in samples]),
            "cpu_ms_per_request": _median([sample.get("cpu_ms_per_request") or 0.0
                                           for sample in samples]) or None,
            "requests": sum(sample["requests"] or 0 for sample in samples),
            "errors": sum(sample["non_2xx_3xx"] + sum(sample["socket_errors"].values())
                          for sample in samples),
            "url": samples[0]["url"]}


def stack_configs(modes, folder: Path, **options):
    """One StackConfig per mode for a benchmark of its own (STACK_OPTIONS, with `options`
    replacing some): each with its run directory and database under `folder`, and ports no
    other of them uses (see `distinct_ports`)."""
    from infra import StackConfig

    folder, options = Path(folder), {**STACK_OPTIONS, **options}
    return distinct_ports({mode: StackConfig(
        cache=mode, run_dir=folder / mode / "state",
        sqlite_path=folder / mode / "marketplace.sqlite3", **options) for mode in modes})


def distinct_ports(configs: dict) -> dict:
    """The configs moved to free port offsets that differ from each other. A free port stays
    free until a stack binds it, so stacks started side by side must not each look for free
    ports on their own: they would all find the same ones."""
    from infra import free_port_offset
    from infra.processes import port_is_free

    moved, used = {}, set()
    for name, config in configs.items():
        if config.port_offset in used or not (
                all(port_is_free(port) for port in config.tcp_ports())
                and port_is_free(config.log_receiver_port, udp=True)):
            start = max([10000, *(offset + 500 for offset in used)])
            config = config.replace(port_offset=free_port_offset(config, start=start))
        used.add(config.port_offset)
        moved[name] = config
    return moved


@contextmanager
def running_stacks(configs: dict, progress=print):
    """Starts one stack per config side by side, a thread each (every stack has its own
    ports, run directory, Redis and database: they share nothing but the CPU), yields
    {name: Stack}, and stops every one that started when the block ends, whatever happened.
    If one fails to start, the others are stopped and its error is raised. The configs' ports
    must differ (`distinct_ports`)."""
    from infra import Stack

    quiet = lambda *args, **kwargs: None  # noqa: E731
    stacks = {name: Stack(config, progress=quiet) for name, config in configs.items()}
    for name, stack in stacks.items():
        progress(f"starting the {name} stack (ports +{stack.config.port_offset})")
    with ThreadPoolExecutor(max_workers=max(1, len(stacks))) as pool:
        futures = {name: pool.submit(stack.up) for name, stack in stacks.items()}
    started = {name: stacks[name] for name, future in futures.items()
               if future.exception() is None}
    try:
        for name, future in futures.items():
            if future.exception() is not None:
                raise RuntimeError(f"the {name} stack did not start: "
                                   f"{future.exception()}") from future.exception()
        yield started
    finally:
        with ThreadPoolExecutor(max_workers=max(1, len(started))) as pool:
            list(pool.map(lambda stack: stack.down(quiet=True), started.values()))


def run_profile(profile, **kwargs):
    """run() with what a profile (a name or a BenchmarkProfile) measures."""
    profile = get_profile(profile)
    return run(modes=profile.modes, duration=profile.seconds, rounds=profile.rounds,
               direct=profile.direct, staleness_modes=profile.staleness_modes,
               staleness_seconds=profile.staleness_seconds, **kwargs)


def run(*, modes=MODES, duration=5, rounds=3, connections=16, wrk_threads=2,
        staleness_modes=STALENESS_MODES, staleness_seconds=8.0, direct=True, stacks=None,
        stack_options=None, folder=None, progress=print):
    """Measures every mode in `modes` and the constant app; returns the result dict.

    `stacks` ({mode: running infra.Stack}) are used as they are and left running; without
    them one stack per mode is started (side by side, `stack_configs` with `stack_options`)
    and stopped at the end. Every stack runs at once, and the wrk runs go round-robin over
    them, `rounds` times: on a shared two-core machine the load from elsewhere changes over
    minutes, and interleaving spreads it over every measurement alike instead of favouring
    whichever ran in a quiet minute. Rows are medians over the rounds."""
    from infra import StackConfig

    from . import loadtest, perf

    folder = Path(folder or tempfile.mkdtemp(prefix="lab-cache-benchmark-"))
    folder.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()  # the machine's load from elsewhere, reported with the figures
    wrk = dict(threads=wrk_threads, connections=connections, duration=duration)
    targets_by_label, pids_by_label = {}, {}
    staleness, counters, samples = [], {}, {}
    home_body = None

    with ExitStack() as cleanup:
        if not os.environ.get("LAB_KEEP_BENCHMARK_FILES") and folder.name.startswith(
                "lab-cache-benchmark-"):  # a folder of our own: gone at the end, even on failure
            cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
        if stacks is None:
            stacks = cleanup.enter_context(running_stacks(
                stack_configs(modes, folder, **(stack_options or {})), progress=progress))
        modes = tuple(stacks)
        for mode, stack in stacks.items():
            targets_by_label[f"{mode} via haproxy"] = (mode, stack.web_url + "/")
            # Off: the whole stack, since every page costs the experience and entity tiers
            # too. Cached modes: what a hit runs through (HAProxy, its log receiver, the web
            # instances, Redis); the idle experience and entity tiers' background CPU (health
            # checks, gunicorn heartbeats) is left out, as it is for the constant app.
            pids_by_label[f"{mode} via haproxy"] = [
                stack.pid(name) for name in stack.process_names()
                if mode == "off" or not name.startswith(("experience", "entity"))]
            if mode == "invalidate" and direct:
                targets_by_label["invalidate direct"] = (
                    mode, stack.instances("web")[0].url + "/")
                pids_by_label["invalidate direct"] = [
                    stack.pid(instance.name) for instance in stack.instances("web")] + [
                    stack.pid("redis")]
        # Fresh workers open their connection pools and fill their template caches on their
        # first requests: a round that met them cold (one round in a quick profile) would
        # measure that, most of all with the cache off, where every request runs every tier.
        for stack in stacks.values():
            config = stack.config
            perf.prewarm(stack.web_url,
                         max(config.web, config.experience, config.entity) * config.workers)
        client = cleanup.enter_context(_http())
        for label, (mode, url) in targets_by_label.items():
            answer = warm(client, url, want=("HIT",) if mode != "off" else ("BYPASS",))
            if mode != "off" and answer.headers.get("X-Cache") != "HIT":
                raise RuntimeError(f"{label}: the home page never became a hit")
            if mode == "invalidate":
                home_body = answer.content
        if home_body is not None:
            invalidate = stacks["invalidate"].config
            progress(f"starting the constant app ({len(home_body)} bytes, "
                     f"{invalidate.workers} workers x {invalidate.threads} threads)")
            constant = cleanup.enter_context(loadtest.constant_gunicorn(
                folder, workers=invalidate.workers, threads=invalidate.threads,
                body=home_body))
            port = int(constant.url.rstrip("/").rsplit(":", 1)[1])
            if direct:
                targets_by_label["constant direct"] = ("constant", constant.url)
                pids_by_label["constant direct"] = [constant.process.pid]
            try:
                proxies, url = start_haproxy_for(
                    port, folder, StackConfig(web=1, workers=invalidate.workers,
                                              threads=invalidate.threads),
                    stacks["invalidate"].credentials)
                for process in proxies:
                    cleanup.callback(stop_group, process)
                targets_by_label["constant via haproxy"] = ("constant", url)
                pids_by_label["constant via haproxy"] = [constant.process.pid,
                                                         *(process.pid for process in proxies)]
            except Exception as error:  # noqa: BLE001 - reported; the direct row stands
                progress(f"  the constant app behind HAProxy is not measured: {error}")

        for number in range(1, rounds + 1):
            for label, (mode, url) in targets_by_label.items():
                if mode not in ("off", "constant"):
                    warm(client, url)  # a TTL may have run out between rounds
                result = measured_wrk(url, pids_by_label.get(label, []), **wrk)
                samples.setdefault(label, []).append(result)
                progress(f"round {number}/{rounds} {label:24} {result['requests_per_s']:8.0f} "
                         f"req/s  p99 {result['latency_ms'].get('p99', 0):7.1f} ms  "
                         f"{result['cpu_ms_per_request'] or 0:6.2f} CPU ms/request")

        staleness_run = [mode for mode in staleness_modes if mode in stacks]
        for mode in staleness_run:
            progress(f"staleness under writes, {mode} ({staleness_seconds:g} s)")
            try:
                result = measure_staleness(stacks[mode], duration=staleness_seconds)
            except Exception as error:  # noqa: BLE001 - recorded; the other figures stand
                progress(f"  not measured: {type(error).__name__}: {error}")
                staleness.append({"mode": mode, "error": f"{type(error).__name__}: {error}",
                                  "stale_reads": None, "reads_after_a_write": 0,
                                  "reads": 0, "writes": {}, "x_cache": {}})
                continue
            staleness.append({"mode": mode, **result})
            progress(f"  {result['stale_reads']} stale of {result['reads_after_a_write']} "
                     f"reads sent after a write returned")
        for mode, stack in stacks.items():
            counters[mode] = _cache_counters(stack, mode)

    rows = [summarize(label, targets_by_label[label][0], runs)
            for label, runs in samples.items()]
    stack_config = next(iter(stacks.values())).config if stacks else None
    result = {"config": {"modes": list(modes), "duration_s": duration, "rounds": rounds,
                         "connections": connections, "wrk_threads": wrk_threads,
                         "direct": direct, "staleness_modes": staleness_run,
                         "staleness_seconds": staleness_seconds,
                         **{key: getattr(stack_config, key, None) for key in STACK_OPTIONS},
                         "cpus": os.cpu_count(),
                         "load_average_before": [round(value, 2) for value in load_before],
                         "load_average_after": [round(value, 2) for value in os.getloadavg()],
                         "home_bytes": len(home_body) if home_body else None},
              "rows": rows, "staleness": staleness, "counters": counters,
              "samples": {label: [{key: sample.get(key) for key in
                                   ("requests_per_s", "latency_ms", "requests", "non_2xx_3xx",
                                    "cpu_ms_per_request")}
                                  for sample in runs] for label, runs in samples.items()}}
    result["targets"] = targets(result)
    return result


def _row(rows, label):
    return next((row for row in rows if row["label"] == label), None)


def targets(result):
    """The issue's targets, each with the measured value (None when not measured). A target
    whose modes this run did not start (result["config"]["modes"], e.g. a quick profile
    without the django stack) says so in its `note`, "not measured in this profile"."""
    rows = result["rows"]

    def ratio(a, b, field="requests_per_s"):
        if a is None or b is None or not b[field]:
            return None
        return a[field] / b[field]

    off, hits = _row(rows, "off via haproxy"), _row(rows, "invalidate via haproxy")
    django = _row(rows, "django via haproxy")
    constant_proxy = _row(rows, "constant via haproxy")
    constant_direct = _row(rows, "constant direct")
    hits_direct = _row(rows, "invalidate direct")
    vs_constant, how = ratio(hits, constant_proxy), "both behind HAProxy"
    if vs_constant is None:
        vs_constant, how = ratio(hits_direct, constant_direct), "both direct"
    p99_ratio = (hits["p99_ms"] / off["p99_ms"]
                 if hits and off and off["p99_ms"] else None)
    stale = {entry["mode"]: entry["stale_reads"] for entry in result["staleness"]}

    def cpu_ratio(cheaper, dearer):
        """How many times the requests of `cheaper` a CPU-bound server could serve in the CPU
        time of one request of `dearer`: the throughput ratio without the other load on the
        machine. Rows measured without CPU figures give None."""
        if cheaper is None or dearer is None or not cheaper.get("cpu_ms_per_request") \
                or not dearer.get("cpu_ms_per_request"):
            return None
        return dearer["cpu_ms_per_request"] / cheaper["cpu_ms_per_request"]

    cpu_vs_constant = cpu_ratio(hits, constant_proxy)
    cpu_how = "both behind HAProxy"
    if cpu_vs_constant is None:
        cpu_vs_constant, cpu_how = cpu_ratio(hits_direct, constant_direct), "both direct"
    # (name, measured, op, bound, the modes it needs: the constant app is started only with
    # the invalidate stack, whose home page it serves)
    items = [
        ("home: warm cache vs off, throughput", ratio(hits, off), ">=", 10.0,
         ("invalidate", "off")),
        ("home: warm cache vs off, p99 latency", p99_ratio, "<=", 0.1, ("invalidate", "off")),
        ("hits vs django mode, throughput", ratio(hits, django), ">=", 1.5,
         ("invalidate", "django")),
        (f"hits vs constant bytes, throughput ({how})", vs_constant, ">=", 0.7,
         ("invalidate",)),
        ("stale reads after a write returned (invalidate)", stale.get("invalidate"), "<=", 0,
         ("invalidate staleness",)),
        ("estimate from server CPU per request: warm cache vs off", cpu_ratio(hits, off),
         ">=", 10.0, ("invalidate", "off")),
        ("estimate from server CPU per request: hits vs django mode", cpu_ratio(hits, django),
         ">=", 1.5, ("invalidate", "django")),
        (f"estimate from server CPU per request: hits vs constant bytes ({cpu_how})",
         cpu_vs_constant, ">=", 0.7, ("invalidate",)),
    ]
    config = result.get("config", {})
    modes = config.get("modes", MODES)
    ran = {*modes, *(f"{mode} staleness" for mode in config.get("staleness_modes", modes))}
    found = []
    for name, value, op, bound, needs in items:
        missing = [mode for mode in needs if mode not in ran]
        note = None
        if value is None:
            note = (f"not measured in this profile ({' and '.join(missing)} not run)"
                    if missing else "not measured")
        found.append({"target": name, "measured": value, "op": op, "required": bound,
                      "met": None if value is None else (
                          value >= bound if op == ">=" else value <= bound),
                      "note": note})
    return found


def format_result(result) -> str:
    config = result.get("config", {})
    lines = []
    if "load_average_before" in config:
        lines.append(f"machine: {config['cpus']} CPUs, load average (1/5/15 min) "
                     f"{config['load_average_before']} before, "
                     f"{config['load_average_after']} after")
    lines += [f"{'measurement':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
             f"{'CPU ms/req':>10}"]
    for row in result["rows"]:
        cpu = row.get("cpu_ms_per_request")
        lines.append(f"{row['label']:28} {row['requests_per_s']:9.0f} "
                     f"{row['p50_ms'] or 0:8.2f} {row['p99_ms'] or 0:8.2f} {row['errors']:7d} "
                     + (f"{cpu:10.2f}" if cpu else f"{'-':>10}"))
    for entry in result["staleness"]:
        if entry.get("error"):
            lines.append(f"staleness {entry['mode']}: not measured ({entry['error']})")
            continue
        lines.append(f"staleness {entry['mode']}: {entry['stale_reads']} stale of "
                     f"{entry['reads_after_a_write']} reads after a write "
                     f"({entry['reads']} reads, {sum(entry['writes'].values())} writes, "
                     f"X-Cache {entry['x_cache']})")
    for target in result["targets"]:
        value = (target.get("note") or "not measured" if target["measured"] is None
                 else f"{target['measured']:.3g}")
        verdict = {True: "met", False: "NOT met", None: "-"}[target["met"]]
        lines.append(f"target {target['target']}: {value} (needs {target['op']} "
                     f"{target['required']:g}): {verdict}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lab.cache_benchmark",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full",
                        help="what to measure; the options below override it "
                             "(default: %(default)s)")
    parser.add_argument("--modes", help="comma-separated cache modes, e.g. off,invalidate")
    parser.add_argument("--duration", type=float, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, help="wrk runs per measurement, interleaved")
    parser.add_argument("--staleness-seconds", type=float)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--web", type=int, default=STACK_OPTIONS["web"], help="web instances")
    parser.add_argument("--workers", type=int, default=STACK_OPTIONS["workers"],
                        help="gunicorn workers per instance")
    parser.add_argument("--threads", type=int, default=STACK_OPTIONS["threads"],
                        help="threads per gunicorn worker")
    parser.add_argument("--output", help="write the result as JSON here")
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile, modes=args.modes, seconds=args.duration,
                              rounds=args.rounds, staleness_seconds=args.staleness_seconds)
    except ValueError as error:
        parser.error(str(error))
    result = run_profile(profile, connections=args.connections, wrk_threads=args.wrk_threads,
                         stack_options={"web": args.web, "workers": args.workers,
                                        "threads": args.threads},
                         progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(format_result(result))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
