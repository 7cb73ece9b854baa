"""The load-balancing experiments (notebooks/05_load_balancing.ipynb): several web instances
behind HAProxy, measured from both ends, the client's and HAProxy's own access log.

    from lab import loadbalancing as lb
    workload = lb.site_workload(stack.web_url)
    dist = lb.distribution(run, stack, workload, seconds=3, users=8)   # per-server counts
    tput = lb.throughput(run, stack, seconds=3)                         # HAProxy vs pen (wrk)
    fail = lb.failover(run, stack, workload, seconds=6)                 # resilient/naive/pen
    rate = lb.rate_limit(run, stack)                                    # login 429s

What each one does:

- distribution: a closed-loop load through HAProxy, and the requests each web instance served
  according to HAProxy's access log: round robin on an even workload, then a skewed one
  (another client keeps web1 busy directly, behind HAProxy's back) with round robin and with
  leastconn. HAProxy's stats CSV is read before, during and after the first run.
- throughput: wrk through HAProxy and through pen, in front of the same instances.
- failover: the same load while web1 is killed (SIGKILL) and later restarted, through the
  stack's HAProxy (health checks, redispatch, retry-on), through HAProxy running the naive
  configuration (infra/haproxy/naive.cfg) and through pen: client-visible errors, time until
  the balancer marks web1 down, time until it serves traffic again, the latency spike.
- rate_limit: a burst of log-in POSTs from one address, answered 429 past the threshold,
  while GETs keep working.

Every experiment saves its raw data under <run>/load_balancing/ and returns tidy frames; all
load goes to 127.0.0.1 only, and every loop is bounded in time and in requests."""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from infra import load_balancer
from infra.processes import write_pid

from . import haproxy_logs, loadtest, pen, traffic
from .profiles import chosen

TOPIC = "load_balancing"
REPO_DIR = Path(__file__).resolve().parent.parent
RESILIENT_CFG = load_balancer.HAPROXY_CFG
NAIVE_CFG = REPO_DIR / "infra" / "haproxy" / "naive.cfg"
VICTIM = "web1"
STATS_COLUMNS = ["pxname", "svname", "status", "weight", "scur", "smax", "stot", "rate", "qcur",
                 "hrsp_2xx", "hrsp_4xx", "hrsp_5xx", "econ", "eresp", "wretr", "wredis",
                 "chkfail", "chkdown", "downtime", "lastchg", "check_status"]
LOGIN_LIMIT_VARIABLE = "LAB_HAPROXY_LOGIN_RATE_LIMIT"


def configured_login_limit(cfg: Path = RESILIENT_CFG, env: dict | None = None) -> tuple[int, int]:
    """(log-in POSTs allowed per window, window in seconds) as haproxy.cfg sets them: the
    variable's value when `env` has it, else the default written in the file."""
    text = Path(cfg).read_text()
    window = re.search(r"store http_req_rate\((\d+)s\)", text)
    default = re.search(r"\$\{" + LOGIN_LIMIT_VARIABLE + r"-(\d+)\}", text)
    if not window or not default:
        raise ValueError(f"{cfg} has no log-in rate limit")
    limit = (env or {}).get(LOGIN_LIMIT_VARIABLE) or default.group(1)
    return int(limit), int(window.group(1))


def _folder(run, *parts) -> Path:
    folder = run.topic(TOPIC).joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _say(progress, text):
    if progress:
        progress(text)


def http_client(**options) -> httpx.Client:
    """An httpx client for plain HTTP to 127.0.0.1. verify=False because nothing here uses
    TLS, and loading the CA bundle costs a client tens of milliseconds of CPU (seconds on a
    busy machine), which would eat into a timed run."""
    return httpx.Client(verify=False, **options)


# --- what the clients ask for -----------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """Paths to request, each with a weight."""
    name: str
    paths: tuple
    weights: tuple

    def picker(self, seed: int):
        rng = random.Random(seed)
        paths, weights = list(self.paths), list(self.weights)
        return lambda: rng.choices(paths, weights)[0]


def site_workload(base_url: str, *, listings: int = 20, timeout: float = 15.0) -> Workload:
    """What the load test's browsers mostly do, as a fixed set of GETs: the home page, listing
    pages (ids read from the search results) and searches; after the first visit each is a
    page-cache hit, so the workload is even across instances."""
    ids: list[int] = []
    with http_client(base_url=base_url, timeout=timeout) as client:
        for page in range(1, 5):
            reply = client.get("/search", params={"page": page} if page > 1 else None)
            reply.raise_for_status()
            ids += [each for each in traffic.listing_ids(reply.text) if each not in ids]
            if len(ids) >= listings:
                break
    if not ids:
        raise RuntimeError(f"no listings found on {base_url}/search: is the site seeded?")
    ids = ids[:listings]
    terms = [term for term in traffic.SEARCH_TERMS if term][:10]
    paths = (["/"] + [f"/listings/{each}" for each in ids] + [f"/search?q={t}" for t in terms])
    # home : listings : searches = 3 : 6 : 3, as the load test's Browser persona
    weights = ([3.0] + [6.0 / len(ids)] * len(ids) + [3.0 / len(terms)] * len(terms))
    return Workload("browse", tuple(paths), tuple(weights))


class UncachedSearches:
    """A search nobody asked before each time: a page-cache miss that goes through the
    experience and entity tiers: the expensive side of a skewed workload."""
    name = "uncached searches"

    def picker(self, seed: int):
        rng = random.Random(seed)
        return lambda: (f"/search?q={rng.choice(traffic.SEARCH_TERMS[:10])}"
                        f"+{uuid.UUID(int=rng.getrandbits(128)).hex[:8]}")


# --- a closed-loop load generator that keeps every request ------------------------------------

REQUEST_COLUMNS = ["epoch", "t_s", "latency_ms", "status", "error", "served_by", "path", "user"]


class ClosedLoop:
    """`users` threads, each sending GETs one after another (no think time) over its own
    keep-alive connection, until stop() is called, `seconds` pass, or `max_requests` have
    been sent. Every request is kept: start time, latency, status (0 when no HTTP answer came
    back), the exception's name, and the instance that answered (X-Served-By).

    A Python generator, not locust or wrk, because the failover analysis needs each request's
    timing and outcome, and which instance served it; at these rates (a few hundred requests
    a second) its cost is small next to the stack's."""

    def __init__(self, base_url: str, workload, *, users: int = 8, seconds: float = 10.0,
                 max_requests: int = 500_000, timeout: float = 10.0, seed: int = 0):
        self.base_url, self.workload, self.users = base_url.rstrip("/"), workload, users
        self.seconds, self.max_requests, self.timeout, self.seed = (
            seconds, max_requests, timeout, seed)
        self.records: list[tuple] = []
        self._stop = threading.Event()
        self._sent = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._user, args=(number,), daemon=True)
                         for number in range(users)]
        self.t0 = None
        self.ended = None
        self._deadline = None

    def start(self) -> "ClosedLoop":
        # The clients are made before the clock starts, so the run measures requests only.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._clients = [http_client(base_url=self.base_url, timeout=self.timeout,
                                     limits=limits, headers={"User-Agent": "lab-loadbalancing"})
                         for _ in range(self.users)]
        self.t0 = time.time()
        self._deadline = time.monotonic() + self.seconds
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> "ClosedLoop":
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        self.ended = self.ended or time.time()
        return self

    def wait(self) -> "ClosedLoop":
        """Until the time is up (or the request budget spent)."""
        for thread in self._threads:
            thread.join(timeout=self.seconds + self.timeout + 5)
        self.ended = self.ended or time.time()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _take(self) -> bool:
        with self._lock:
            if self._sent >= self.max_requests:
                return False
            self._sent += 1
            return True

    def _user(self, number: int):
        pick = self.workload.picker(self.seed * 1000 + number)
        with self._clients[number] as client:
            while (not self._stop.is_set() and time.monotonic() < self._deadline
                   and self._take()):
                path = pick()
                started_epoch, started = time.time(), time.perf_counter()
                try:
                    reply = client.get(path)
                    status, error = reply.status_code, ""
                    served_by = reply.headers.get("X-Served-By", "")
                except httpx.HTTPError as problem:
                    status, error, served_by = 0, type(problem).__name__, ""
                latency = (time.perf_counter() - started) * 1000
                self.records.append((started_epoch, latency, status, error, served_by, path,
                                     number))

    @property
    def sent(self) -> int:
        return len(self.records)

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.records, columns=["epoch", "latency_ms", "status", "error",
                                                    "served_by", "path", "user"])
        frame.insert(1, "t_s", frame["epoch"] - (self.t0 or 0.0))
        return frame.sort_values("epoch", ignore_index=True)[REQUEST_COLUMNS]


def is_error(frame: pd.DataFrame) -> pd.Series:
    """What a client counts as a failed request: no HTTP answer, or not 2xx/3xx."""
    return ~frame["status"].between(200, 399)


def error_kind(frame: pd.DataFrame) -> pd.Series:
    return frame["error"].where(frame["error"] != "", frame["status"].astype(str))


def client_summary(frame: pd.DataFrame, seconds: float | None = None) -> dict:
    errors = is_error(frame)
    latency = frame["latency_ms"]
    span = seconds or (float(frame["epoch"].max() - frame["epoch"].min()) if len(frame) else 0)
    return {"requests": int(len(frame)), "errors": int(errors.sum()),
            "error_rate": round(float(errors.mean()), 5) if len(frame) else 0.0,
            "rps": round(len(frame) / span, 1) if span else float("nan"),
            "p50_ms": round(_percentile(latency, 50), 1),
            "p95_ms": round(_percentile(latency, 95), 1),
            "p99_ms": round(_percentile(latency, 99), 1),
            "max_ms": round(float(latency.max()), 1) if len(frame) else float("nan")}


def _percentile(values, q) -> float:
    values = np.asarray(values, dtype=float)
    return float(np.percentile(values, q)) if len(values) else float("nan")


def warm_up(base_url: str, workload: Workload, *, seconds: float = 1.0, users: int = 4) -> dict:
    """Every path of the workload once (filling the page cache; `users` at a time), then a
    short load, so that no measured run pays for first visits or cold connection pools."""
    with http_client(base_url=base_url, timeout=30,
                     limits=httpx.Limits(max_connections=users)) as client:
        with ThreadPoolExecutor(users) as pool:
            list(pool.map(client.get, workload.paths))
    loop = ClosedLoop(base_url, workload, users=users, seconds=seconds).start().wait()
    return {"first_visits": len(workload.paths), **client_summary(loop.frame())}


# --- HAProxy's statistics ---------------------------------------------------------------------

def stats_snapshot(stack, *, backend: str = "web", label: str = "",
                   client: httpx.Client | None = None) -> pd.DataFrame:
    """The stats CSV rows of one backend (each server and the backend total): state, current
    and total sessions, responses by class, connection and response errors, retries (wretr)
    and redispatches (wredis), failed checks and downtime.
    https://docs.haproxy.org/2.6/management.html#9.1"""
    with (nullcontext(client) if client else http_client()) as reader:
        rows = load_balancer.read_stats(stack.stats_url, stack.stats_auth, timeout=2.0,
                                        client=reader)
    frame = pd.DataFrame([row for row in rows if row["pxname"] == backend])
    frame = frame[[column for column in STATS_COLUMNS if column in frame.columns]].copy()
    for column in frame.columns:
        if column not in ("pxname", "svname", "status", "check_status"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame.insert(0, "when", label)
    frame.insert(1, "epoch", time.time())
    return frame


class StatePoller:
    """Reads HAProxy's stats CSV every `interval` seconds in a thread and keeps each server's
    state and counters, to time a server's way out of rotation and back."""

    def __init__(self, stack, *, backend: str = "web", interval: float = 0.05):
        self.stack, self.backend, self.interval = stack, backend, interval
        self.rows: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with http_client(timeout=1.0) as client:
            while not self._stop.is_set():
                epoch = time.time()
                try:
                    rows = load_balancer.read_stats(self.stack.stats_url, self.stack.stats_auth,
                                                    client=client)
                except httpx.HTTPError:
                    rows = []
                for row in rows:
                    if row["pxname"] == self.backend and row["svname"] != "FRONTEND":
                        self.rows.append({"epoch": epoch, "server": row["svname"],
                                          "status": row["status"], "scur": row["scur"],
                                          "stot": row["stot"]})
                self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=["epoch", "server", "status", "scur", "stot"])
        for column in ("scur", "stot"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        return frame


# --- another HAProxy configuration on the same stack ------------------------------------------

@contextmanager
def haproxy_variant(stack, *, cfg: Path = RESILIENT_CFG, env: dict | None = None,
                    name: str = "variant", run=None, ready_timeout: float = 15.0):
    """HAProxy with another configuration file (or the stack's own with other variables) in
    place of the stack's HAProxy, on the same ports, logging to the same receiver; the
    stack's own HAProxy is started again afterwards. The variant runs in the foreground (-db)
    as our child; its pid file sits with the stack's, so a stack stopped after a failure
    stops it too."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/bin"),
                **stack.haproxy_environment(), **(env or {})}
    load_balancer.check_config(full_env, cfg)
    argv = [load_balancer.HAPROXY_BIN, "-db", "-f", str(cfg)]
    if run is not None:
        shown = " ".join(f"{key}={value}" for key, value in (env or {}).items())
        run.record_command(TOPIC, ([shown] if shown else []) + argv,
                           f"HAProxy with {Path(cfg).name} in place of the stack's ({name})")
    stack.stop("haproxy")
    pid_file = stack.pid_dir / f"haproxy-{name}.pid"
    process = None
    try:
        with open(stack.log_dir / f"haproxy-{name}.log", "ab") as log:
            process = subprocess.Popen(argv, env=full_env, cwd=REPO_DIR, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        write_pid(pid_file, process.pid)

        def answers(client):
            return (client.get(stack.stats_url + "/;csv", auth=stack.stats_auth).status_code
                    == 200 and client.get(stack.web_url + "/healthz").status_code == 200)

        pen.until_ready(process, answers, ready_timeout, "HAProxy",
                        f"see {stack.log_dir}/haproxy-{name}.log")
        yield process
    finally:
        if process is not None:
            loadtest.stop_process(process)
        pid_file.unlink(missing_ok=True)
        stack.start("haproxy")


# --- distribution -----------------------------------------------------------------------------

@dataclass
class DistributionResult:
    per_server: pd.DataFrame  # one row per scenario and server, from HAProxy's log
    clients: pd.DataFrame  # one row per scenario, from the clients' side
    stats: pd.DataFrame  # the stats CSV of the web backend before, during and after run 1
    log_lines: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {"per_server": self.per_server.to_dict("records"),
                "clients": self.clients.to_dict("records")}


SCENARIOS = {
    # key: (name, balance algorithm, skewed?)
    "roundrobin_even": ("round robin, even workload", "roundrobin", False),
    "roundrobin_skewed": ("round robin, skewed workload", "roundrobin", True),
    "leastconn_skewed": ("leastconn, skewed workload", "leastconn", True),
}


def distribution(run, stack, workload: Workload, *, seconds: float = 3.0, users: int = 8,
                 side_users: int = 8, victim: str = VICTIM, scenarios="all",
                 progress=print) -> DistributionResult:
    """Each scenario (keys of SCENARIOS, or "all"): `users` clients for `seconds` through
    HAProxy; which server answered each request is read from HAProxy's own log. In the
    skewed scenarios `side_users` more clients send expensive uncached searches straight to
    `victim`'s port, so it is busier than the others without HAProxy having sent it that
    work. HAProxy's stats are read before, during and after the first scenario that runs."""
    keys = chosen(scenarios, SCENARIOS, "scenario")
    per_server, clients, stats, all_lines = [], [], [], []
    victim_url = next(each.url for each in stack.instances("web") if each.name == victim)
    for index, (name, balance, skewed) in enumerate(SCENARIOS[key] for key in keys):
        context = (nullcontext() if balance == "roundrobin" else
                   haproxy_variant(stack, env={"LAB_HAPROXY_BALANCE": balance}, name=balance,
                                   run=run))
        with context:
            first = index == 0
            if first:
                stats.append(stats_snapshot(stack, label="before"))
            cursor = haproxy_logs.LogCursor(stack.haproxy_log_path)
            side = (ClosedLoop(victim_url, UncachedSearches(), users=side_users,
                               seconds=seconds + 10, seed=99) if skewed else None)
            if side:
                side.start()
            loop = ClosedLoop(stack.web_url, workload, users=users, seconds=seconds,
                              seed=index).start()
            if first:
                time.sleep(seconds / 2)  # a timed snapshot in the middle of the run
                stats.append(stats_snapshot(stack, label="during"))
            loop.wait()
            if side:
                side.stop()
            if first:
                stats.append(stats_snapshot(stack, label="after"))
            sent = loop.sent
            lines = cursor.read(wait_for=lambda got: haproxy_logs.count_requests(got) >= sent)
        all_lines += lines
        logged = haproxy_logs.requests_frame(lines)
        logged = logged[logged["frontend"] == "web"]
        table = haproxy_logs.per_server(logged)
        table.insert(0, "scenario", name)
        table.insert(1, "balance", balance)
        table.insert(2, "skewed", skewed)
        per_server.append(table)
        frame = loop.frame()
        frame.to_csv(_folder(run, "distribution") / f"requests-{keys[index]}.csv", index=False)
        summary = {"scenario": name, "balance": balance, "skewed": skewed,
                   **client_summary(frame, seconds), "logged": int(len(logged)),
                   "side_requests": side.sent if side else 0,
                   "side_p50_ms": round(_percentile(side.frame()["latency_ms"], 50), 1)
                   if side else None}
        clients.append(summary)
        _say(progress, f"{name}: {summary['requests']} requests, "
                       f"{dict(zip(table['server'], table['requests']))}")
    result = DistributionResult(pd.concat(per_server, ignore_index=True),
                                pd.DataFrame(clients), pd.concat(stats, ignore_index=True),
                                all_lines)
    folder = _folder(run)
    result.per_server.to_csv(folder / "distribution.csv", index=False)
    result.clients.to_csv(folder / "distribution_clients.csv", index=False)
    result.stats.to_csv(folder / "stats_before_during_after.csv", index=False)
    haproxy_logs.requests_frame(all_lines).to_csv(folder / "distribution_haproxy_log.csv",
                                                  index=False)
    return result


def spread(per_server: pd.DataFrame, scenario: str) -> dict:
    """How even one scenario's distribution is: each server's share, and the largest
    difference from an equal share, in percentage points."""
    rows = per_server[(per_server["scenario"] == scenario) & (per_server["server"] != "<NOSRV>")]
    shares = rows["requests"] / rows["requests"].sum()
    equal = 1 / len(rows)
    return {"shares": dict(zip(rows["server"], shares.round(3))),
            "max_deviation_pts": round(float((shares - equal).abs().max()) * 100, 1)}


# --- throughput: HAProxy and pen side by side -------------------------------------------------

class _TopicRecorder:
    """lab.loadtest records its commands under the perf topic; this files them here."""

    def __init__(self, run):
        self.run = run

    def record_command(self, topic, *args, **kwargs):
        return self.run.record_command(TOPIC, *args, **kwargs)


def throughput(run, stack, *, seconds: float = 3.0, connections: int = 16, path: str = "/",
               rounds: int = 2, pen_blacklist_s: float | None = None,
               progress=print) -> pd.DataFrame:
    """wrk (lab.loadtest.run_wrk) on the same page through HAProxy and through pen, in front
    of the same web instances, `rounds` times each, alternating (so neither always runs on
    a machine the other has just warmed or loaded)."""
    folder = _folder(run, "throughput")
    recorder = _TopicRecorder(run)
    rows = []
    with pen.running(stack.instances("web"), folder, blacklist_s=pen_blacklist_s,
                     pid_dir=stack.pid_dir) as balancer:
        run.record_command(TOPIC, balancer.argv, "pen in front of the web instances")
        targets = {"HAProxy": stack.web_url, "pen": balancer.url}
        for number in range(1, rounds + 1):
            for name, url in targets.items():
                result = loadtest.run_wrk(folder, f"{name.lower()}-{number}", url + path,
                                          connections=connections, seconds=seconds,
                                          run_dir=recorder)
                rows.append({"balancer": name, "round": number, "connections": connections,
                             **{key: result.get(key) for key in (
                                 "rps", "requests", "p50_ms", "p90_ms", "p99_ms", "max_ms",
                                 "errors", "non_2xx", "generator_cpu_mean_pct",
                                 "generator_saturated")}})
                _say(progress, f"wrk through {name}: {result.get('rps'):.0f} requests/s, "
                               f"p99 {result.get('p99_ms'):.1f} ms")
    frame = pd.DataFrame(rows)
    frame.to_csv(_folder(run) / "throughput.csv", index=False)
    return frame


# --- failover ---------------------------------------------------------------------------------

@dataclass
class FailoverRun:
    balancer: str
    requests: pd.DataFrame  # the client's record of every request
    marks: dict  # epoch of start, kill, restart, healthy (victim answers), end
    poll: pd.DataFrame  # HAProxy's state of each server over time (empty for pen)
    log_lines: list  # HAProxy's log lines of the run (empty for pen)
    stats: pd.DataFrame  # the web backend's stats before and after (empty for pen)
    victim: str = VICTIM

    @property
    def logged(self) -> pd.DataFrame:
        return haproxy_logs.requests_frame(self.log_lines)

    @property
    def events(self) -> pd.DataFrame:
        return haproxy_logs.events_frame(self.log_lines)

    def metrics(self) -> dict:
        return failover_metrics(self.requests, self.marks, poll=self.poll, events=self.events,
                                logged=self.logged, stats=self.stats, victim=self.victim,
                                balancer=self.balancer)


def failover_metrics(requests: pd.DataFrame, marks: dict, *, poll=None, events=None,
                     logged=None, stats=None, victim: str = VICTIM, balancer: str = "") -> dict:
    """The numbers of one failover run, from the client's record (errors, latency, who served
    what), HAProxy's state over time (poll), its log (server events, retries) and its stats.
    Times are seconds after the kill, or after the restart; None when it did not happen within
    the run (or the balancer cannot tell: pen has no stats and no log)."""
    kill, restart, healthy = marks["kill"], marks["restart"], marks.get("healthy")
    killed = marks.get("killed", kill)
    errors = requests[is_error(requests)]
    # when the client learnt of each error: the request's start plus its latency
    errors_seen = errors["epoch"] + errors["latency_ms"] / 1000
    before = requests[requests["epoch"] < kill]
    outage = requests[(requests["epoch"] >= kill) & (requests["epoch"] < restart)]
    after = requests[requests["epoch"] >= restart]

    def since(epoch, origin):
        return None if epoch is None or origin is None else round(epoch - origin, 3)

    # the balancer's view: first DOWN after the kill, first UP after the restart
    down_at = up_at = None
    if events is not None and len(events):
        mine = events[events["server"] == victim]
        downs = mine[(mine["state"] == "DOWN") & (mine["received_epoch"] >= kill)]
        ups = mine[(mine["state"] == "UP") & (mine["received_epoch"] >= restart)]
        down_at = float(downs["received_epoch"].min()) if len(downs) else None
        up_at = float(ups["received_epoch"].min()) if len(ups) else None
    if poll is not None and len(poll):
        mine = poll[poll["server"] == victim]
        state = mine["status"].str.split().str[0]
        if down_at is None:
            downs = mine[(state == "DOWN") & (mine["epoch"] >= kill)]
            down_at = float(downs["epoch"].min()) if len(downs) else None
        if up_at is None:
            ups = mine[(mine["status"] == "UP") & (mine["epoch"] >= restart)]
            up_at = float(ups["epoch"].min()) if len(ups) else None
    served_again = requests[(requests["served_by"] == victim) & (requests["epoch"] >= restart)
                            & ~is_error(requests)]
    first_served = float(served_again["epoch"].min()) if len(served_again) else None
    by_kind = error_kind(errors).value_counts().to_dict()
    metrics = {
        "balancer": balancer, "victim": victim,
        "requests": int(len(requests)), "errors": int(len(errors)),
        "error_rate": round(len(errors) / len(requests), 5) if len(requests) else 0.0,
        "errors_by_kind": {str(key): int(value) for key, value in by_kind.items()},
        "first_error_after_kill_s": since(float(errors_seen.min()) if len(errors) else None,
                                          kill),
        "last_error_after_kill_s": since(float(errors_seen.max()) if len(errors) else None,
                                         kill),
        "marked_down_after_kill_s": since(down_at, kill),
        "restart_to_healthy_s": since(healthy, restart),
        "marked_up_after_healthy_s": since(up_at, healthy),
        "served_again_after_healthy_s": since(first_served, healthy),
        "served_again_after_restart_s": since(first_served, restart),
        "run_end_after_healthy_s": since(marks.get("end"), healthy),
        "rps": round(len(requests) / (marks["end"] - marks["start"]), 1),
        "p50_before_ms": round(_percentile(before["latency_ms"], 50), 1),
        "p99_before_ms": round(_percentile(before["latency_ms"], 99), 1),
        "max_before_ms": round(float(before["latency_ms"].max()), 1) if len(before) else None,
        "p50_outage_ms": round(_percentile(outage["latency_ms"], 50), 1),
        "p99_outage_ms": round(_percentile(outage["latency_ms"], 99), 1),
        "max_outage_ms": round(float(outage["latency_ms"].max()), 1) if len(outage) else None,
        "p99_after_restart_ms": round(_percentile(after["latency_ms"], 99), 1),
        "stalls_over_1s": int((requests["latency_ms"] > 1000).sum()),
        "served_by_victim_during_outage": int(
            ((requests["epoch"] >= killed) & (requests["epoch"] < restart)
             & (requests["served_by"] == victim)).sum()),
    }
    if logged is not None and len(logged):
        web = logged[logged["frontend"] == "web"]
        metrics["haproxy_logged"] = int(len(web))
        metrics["haproxy_retried"] = int((web["retries"] > 0).sum())
        metrics["haproxy_redispatched"] = int(web["redispatched"].sum())
        metrics["haproxy_errors"] = int((~web["status"].between(200, 399)).sum())
    if stats is not None and len(stats):
        total = stats[stats["svname"] == "BACKEND"].set_index("when")
        if {"before", "after"} <= set(total.index):
            for counter in ("wretr", "wredis", "econ", "eresp"):
                if counter in total.columns:
                    metrics[f"stats_{counter}"] = int(total.loc["after", counter]
                                                      - total.loc["before", counter])
    return metrics


def failover_run(stack, url: str, workload: Workload, *, balancer: str, seconds: float = 6.0,
                 users: int = 8, victim: str = VICTIM, haproxy: bool = True,
                 kill_at: float = 1 / 3, restart_at: float = 2 / 3,
                 back_timeout: float | None = None, progress=print) -> FailoverRun:
    """Load through `url` for `seconds`; `victim` is killed (SIGKILL, as a crash) at
    `kill_at` of the time (a third) and started again at `restart_at` (two thirds). The run
    goes on until the victim has served a request again (or `back_timeout` after it is
    healthy) and at least `seconds` in all. With `haproxy`, HAProxy's stats are polled every
    50 ms and its log lines kept."""
    back_timeout = back_timeout if back_timeout is not None else max(5.0, seconds)
    cursor = haproxy_logs.LogCursor(stack.haproxy_log_path)
    stats = [stats_snapshot(stack, label="before")] if haproxy else []
    poller = StatePoller(stack) if haproxy else nullcontext()
    loop = ClosedLoop(url, workload, users=users, seconds=seconds + back_timeout + 60,
                      seed=7)
    marks = {}
    with poller:
        loop.start()
        marks["start"] = loop.t0
        try:
            _sleep_until(loop.t0 + seconds * kill_at)
            marks["kill"] = time.time()
            stack.kill(victim)
            marks["killed"] = time.time()  # the SIGKILL has been sent when kill() returns
            _sleep_until(loop.t0 + seconds * restart_at)
            marks["restart"] = time.time()
            stack.start(victim, in_rotation=False)  # returns once it answers /healthz
            marks["healthy"] = time.time()
            deadline = time.time() + back_timeout
            while time.time() < deadline and not any(
                    record[4] == victim and record[0] >= marks["restart"]
                    for record in loop.records[-2000:]):
                time.sleep(0.05)
            # a little more traffic after it is back, and never less than `seconds` in all
            _sleep_until(max(time.time() + seconds / 6, loop.t0 + seconds))
        finally:
            loop.stop()
            marks["end"] = loop.ended
    if haproxy:
        stats.append(stats_snapshot(stack, label="after"))
    sent = loop.sent
    lines = (cursor.read(wait_for=lambda got: haproxy_logs.count_requests(got) >= sent)
             if haproxy else [])
    result = FailoverRun(balancer, loop.frame(), marks,
                         poller.frame() if haproxy else pd.DataFrame(),
                         lines, pd.concat(stats, ignore_index=True) if stats else pd.DataFrame(),
                         victim)
    errors = int(is_error(result.requests).sum())
    _say(progress, f"{balancer}: {sent} requests, {errors} errors")
    return result


def _sleep_until(epoch: float):
    """The experiment's schedule (kill at t, restart at t'), not a wait for readiness."""
    delay = epoch - time.time()
    if delay > 0:
        time.sleep(delay)


BALANCERS = {"resilient": "HAProxy, resilient", "naive": "HAProxy, naive", "pen": "pen"}


def failover(run, stack, workload: Workload, *, seconds: float = 6.0, users: int = 8,
             victim: str = VICTIM, pen_blacklist_s: float | None = 5, balancers="all",
             progress=print) -> tuple[pd.DataFrame, dict]:
    """The failover run through each balancer (keys of BALANCERS, or "all"); returns one row
    of metrics per balancer and the runs themselves (for the figure). Every run's request
    record, HAProxy log lines and state polls are saved under <run>/load_balancing/failover/.

    Through pen the run waits for web1 to serve again at most the blacklist time and a second
    after it is healthy: pen can send web1 only new client connections, once its blacklist
    has expired, and the clients keep the ones they have."""
    keys = chosen(balancers, BALANCERS, "balancer")
    folder = _folder(run, "failover")
    runs: dict[str, FailoverRun] = {}
    for key in keys:
        balancer = BALANCERS[key]
        back_timeout = None
        if key == "resilient":
            context, url, haproxy = nullcontext(), stack.web_url, True
        elif key == "naive":
            context, url, haproxy = (haproxy_variant(stack, cfg=NAIVE_CFG, name="naive", run=run),
                                     stack.web_url, True)
        else:
            context, haproxy = pen.running(stack.instances("web"), folder,
                                           blacklist_s=pen_blacklist_s,
                                           pid_dir=stack.pid_dir), False
            back_timeout = (pen.DEFAULT_BLACKLIST_S if pen_blacklist_s is None
                            else pen_blacklist_s) + 1.0
        with context as entered:
            if key == "pen":
                url = entered.url
                run.record_command(TOPIC, entered.argv, "pen in front of the web instances")
            result = failover_run(stack, url, workload, balancer=balancer, seconds=seconds,
                                  users=users, victim=victim, haproxy=haproxy,
                                  back_timeout=back_timeout, progress=progress)
        runs[balancer] = result
        slug = balancer.lower().replace(", ", "-").replace(" ", "-")
        result.requests.to_csv(folder / f"{slug}-requests.csv", index=False)
        result.poll.to_csv(folder / f"{slug}-haproxy-states.csv", index=False)
        (folder / f"{slug}-haproxy.log").write_text("\n".join(result.log_lines) + "\n")
        (folder / f"{slug}-marks.json").write_text(json.dumps(result.marks, indent=2))
    table = pd.DataFrame([each.metrics() for each in runs.values()])
    table.to_csv(_folder(run) / "failover.csv", index=False)
    return table, runs


# --- the log-in rate limit --------------------------------------------------------------------

def rate_limit(run, stack, *, attempts: int | None = None, concurrency: int = 8,
               recovery_timeout: float = 30.0, env: dict | None = None,
               progress=print) -> "RateLimitResult":
    """A password-guessing burst from one address, as a script would send it: the log-in
    form's CSRF token fetched once, then `attempts` POST /login with a wrong password,
    `concurrency` at a time, while GETs of the home page go on beside them (and three more
    after the burst); then one more POST every 2 s until one is let through again (at most
    `recovery_timeout` seconds; 0 skips this part).

    Recovery takes most of the time (about 15 s): HAProxy's http_req_rate(10s) slides, so
    the burst keeps counting, weighted by how much of its 10-s period is still in the
    window, until well after it, and every refused POST counts too."""
    limit, window = configured_login_limit(env=env)
    attempts = attempts or limit + 10
    rows, lock = [], threading.Lock()
    cursor = haproxy_logs.LogCursor(stack.haproxy_log_path)
    with http_client(base_url=stack.web_url, timeout=30,
                     limits=httpx.Limits(max_connections=concurrency + 2)) as client:
        token = traffic.csrf_token(client.get("/login").text)
        data = {"csrfmiddlewaretoken": token, "username": "nobody-in-particular",
                "password": "guess-1234", "next": "/"}
        headers = {"Referer": stack.web_url + "/login"}
        started = time.time()

        def send(method, path, phase):
            sent_at = time.time()
            reply = (client.post(path, data=data, headers=headers) if method == "POST"
                     else client.get(path))
            with lock:
                rows.append({"t_s": round(sent_at - started, 3), "phase": phase,
                             "method": method, "path": path, "status": reply.status_code,
                             "answered_by": reply.headers.get("X-Served-By") or "HAProxy",
                             "retry_after": reply.headers.get("Retry-After")})
            return reply

        with ThreadPoolExecutor(concurrency) as pool:
            posts = [pool.submit(send, "POST", "/login", "burst") for _ in range(attempts)]
            give_up = time.time() + 120
            while not all(each.done() for each in posts) and time.time() < give_up:
                send("GET", "/", "burst")
                time.sleep(0.1)
            for each in posts:
                each.result()
        for _ in range(3):  # and right after the burst, while log-ins are still refused
            send("GET", "/", "burst")
        recovered, deadline = None, time.time() + recovery_timeout
        while time.time() < deadline:
            time.sleep(2.0)  # the window has to slide on: the schedule, not a readiness wait
            if send("POST", "/login", "recovery").status_code != 429:
                recovered = time.time() - started
                break
    frame = pd.DataFrame(rows).sort_values("t_s", ignore_index=True)
    frame.insert(0, "request", range(1, len(frame) + 1))
    frame.to_csv(_folder(run) / "rate_limit.csv", index=False)
    summary = rate_limit_summary(frame, limit, window)
    summary["recovered_after_s"] = None if recovered is None else round(recovered, 1)
    summary["recovery_waited_s"] = recovery_timeout
    sent = len(frame) + 1  # and the GET of the form
    lines = cursor.read(wait_for=lambda got: haproxy_logs.count_requests(got) >= sent)
    _say(progress, f"rate limit: {summary['posts_let_through']} log-in POSTs let through, "
                   f"{summary['posts_refused_429']} refused with 429")
    return RateLimitResult(frame, summary, lines)


@dataclass
class RateLimitResult:
    requests: pd.DataFrame  # every request of the burst, in the order sent
    summary: dict
    log_lines: list


def rate_limit_summary(frame: pd.DataFrame, limit: int, window: int) -> dict:
    """What a burst shows: how many log-in POSTs reached the app and how many HAProxy refused,
    and whether GETs were answered meanwhile."""
    burst = frame[frame["phase"] == "burst"]
    posts = burst[burst["method"] == "POST"]
    limited = posts[posts["status"] == 429]
    first_refusal = float(limited["t_s"].min()) if len(limited) else float("inf")
    gets = burst[burst["method"] == "GET"]
    gets_after = gets[gets["t_s"] > first_refusal]
    return {
        "limit_per_window": limit, "window_s": window, "attempts": int(len(posts)),
        "burst_seconds": round(float(posts["t_s"].max()), 2) if len(posts) else None,
        "posts_let_through": int((posts["status"] != 429).sum()),
        "posts_refused_429": int(len(limited)),
        "app_statuses": sorted({int(status) for status in posts["status"] if status != 429}),
        "refused_answered_by": sorted(set(limited["answered_by"])),
        "retry_after_s": (int(limited["retry_after"].dropna().iloc[0])
                          if limited["retry_after"].notna().any() else None),
        "gets": int(len(gets)), "gets_ok": int(gets["status"].between(200, 399).sum()),
        "gets_after_first_429": int(len(gets_after)),
        "gets_after_first_429_ok": int(gets_after["status"].between(200, 399).sum()),
    }


# --- the summary the write-up reads -----------------------------------------------------------

def save_summary(run, **parts) -> Path:
    """<run>/load_balancing/summary.json, with frames as lists of records."""
    def plain(value):
        if isinstance(value, pd.DataFrame):
            return json.loads(value.to_json(orient="records"))
        if isinstance(value, dict):
            return {str(key): plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, (np.integer,)):
            return int(value)
        if isinstance(value, (np.floating,)):
            return None if np.isnan(value) else float(value)
        if isinstance(value, float) and np.isnan(value):
            return None
        if isinstance(value, Path):
            return str(value)
        return value

    return run.save_json(TOPIC, "summary", plain(parts))


def machine_load() -> dict:
    """The machine's load average and cores: on a shared two-core machine the absolute
    numbers depend on what else runs, and the write-up should say so."""
    one, five, fifteen = os.getloadavg()
    return {"load_1m": round(one, 2), "load_5m": round(five, 2), "load_15m": round(fifteen, 2),
            "cores": os.cpu_count()}


def topic_commands(run) -> list[dict]:
    """The command lines this topic ran (lab.rundir records every one)."""
    return [entry for entry in run.commands() if entry.get("topic") == TOPIC]
