"""Faults under load: break one part of a running stack while clients browse and write, repair
it, and measure what the clients saw, how long the site took to recover, and whether every write
the site acknowledged is in the database exactly once.

    from lab import reliability
    with lab_stack(run, "reliability", web=2, experience=2, entity=2) as stack:
        table, calls = reliability.run_faults(stack, seconds=6)

The load is a small threaded HTTP client rather than locust: every request is kept with its
timestamps, status and, for writes, the unique title it posted, which is what the accounting
needs (locust's statistics aggregate requests away). Readers GET pages of the site through
HAProxy's web frontend in a closed loop; one writer POSTs a listing with a unique title through
the experience API (as the mobile app would) at a steady pace, and never retries: a write the
site did not acknowledge (no 201) is the client's to resend, not the site's to replay.

Each fault (FAULTS) is injected after a short warm-up, held for `seconds`, then repaired; the
traffic goes on until the repaired part is back and a little longer. Per fault, one row:

    requests, get_errors, post_errors   client-visible failures (a non-2xx/3xx answer, or none)
    http_5xx                            answers with a 5xx status
    error_window_s                      first to last failed request (0: none failed)
    detection_s                         until HAProxy took the broken instance out (kills)
    recovery_s                          from the repair until the part is back in service and
                                        the last client error is over
    acknowledged, lost, duplicated      writes answered 201; of those, missing from the
                                        database; any title stored more than once
    unacknowledged_stored               writes the client saw fail that were stored anyway
                                        (once: allowed; the client may look before resending)

Every request goes to 127.0.0.1; every loop is bounded in time; every process a fault stops is
started again, and `ensure_whole` puts a stack back together before each fault."""
from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import httpx
import pandas as pd

TOPIC = "reliability"
SEED_PASSWORD = "marketplace-demo"  # app/entity/seed.py
SEARCH_WORDS = ("desk", "lamp", "chair", "bike", "oak", "vintage", "table", "guitar", "red")


# --- what the clients saw ---------------------------------------------------------------------

@dataclass
class Call:
    """One request as the client saw it; `start` in seconds since the traffic started."""
    kind: str  # page (a random page), cached (warmed before the fault), fresh (never cached),
    #            write (a POST of a listing)
    method: str
    path: str
    start: float
    seconds: float
    status: int  # 0: no answer (refused, reset, timed out)
    error: str = ""
    cache: str = ""  # X-Cache of web pages
    title: str = ""  # writes: the unique title posted

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400


@dataclass
class Targets:
    """What the traffic needs to know of the site: pages that exist and writers' tokens."""
    listing_ids: list[int]
    seller_ids: list[int]
    tokens: list[str]
    writer_ids: list[int] = field(default_factory=list)  # whose pages the writes invalidate
    sellers_of: dict = field(default_factory=dict)  # listing id -> seller id

    def untouched_pages(self, listings: int = 8, sellers: int = 4) -> tuple:
        """Pages no write of the traffic invalidates (listings and sellers of people who do
        not write): what can stay in the page cache through a fault."""
        writers = set(self.writer_ids)
        pages = [f"/listings/{i}" for i in self.listing_ids
                 if self.sellers_of.get(i) not in writers][:listings]
        pages += [f"/sellers/{i}" for i in self.seller_ids if i not in writers][:sellers]
        return tuple(pages)


def discover(stack, *, users: int = 3, client: httpx.Client | None = None) -> Targets:
    """Listing and seller ids from the entity API, and tokens of `users` seeded people."""
    http = client or httpx.Client(timeout=10.0)
    headers = {"X-Service-Token": stack.service_token}
    listings = http.get(f"{stack.entity_url}/entity/v1/listings",
                        params={"limit": 100}, headers=headers).json()["data"]["items"]
    people = http.get(f"{stack.entity_url}/entity/v1/users", params={"limit": users},
                      headers=headers).json()["data"]["items"]
    tokens = []
    for person in people:
        reply = http.post(f"{stack.experience_url}/exp/v1/login",
                          json={"username": person["username"], "password": SEED_PASSWORD})
        reply.raise_for_status()
        tokens.append(reply.json()["data"]["token"])
    if client is None:
        http.close()
    return Targets(listing_ids=[item["id"] for item in listings],
                   seller_ids=sorted({item["seller"]["id"] for item in listings}),
                   tokens=tokens, writer_ids=[person["id"] for person in people],
                   sellers_of={item["id"]: item["seller"]["id"] for item in listings})


class Traffic:
    """Bounded background load on a running stack (see the module docstring).

        with Traffic(stack, targets, "kill_web1") as traffic:
            ...; traffic.mark("inject"); ...
        traffic.calls, traffic.events
    """

    def __init__(self, stack, targets: Targets, label: str, *, readers: int = 3,
                 think: float = 0.05, write_every: float = 0.25, timeout: float = 10.0,
                 max_seconds: float = 180.0, mix: dict | None = None,
                 cached_paths: tuple = (), seed: int = 1):
        self.stack, self.targets, self.label = stack, targets, label
        self.readers, self.think, self.write_every = readers, think, write_every
        self.timeout, self.max_seconds = timeout, max_seconds
        self.mix = mix or {"page": 1.0}
        self.cached_paths = tuple(cached_paths)
        self.seed = seed
        self.tag = uuid.uuid4().hex[:6]
        self.calls: list[Call] = []
        self.events: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._written = 0
        self._fresh = 0
        self.started = None

    # --- control ------------------------------------------------------------------------
    def __enter__(self):
        self.started = time.monotonic()
        for number in range(self.readers):
            self._threads.append(threading.Thread(target=self._read, args=(number,),
                                                  name=f"reader{number}", daemon=True))
        if self.write_every:
            self._threads.append(threading.Thread(target=self._write_loop, name="writer",
                                                  daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        return False

    def now(self) -> float:
        return time.monotonic() - self.started

    def mark(self, event: str) -> float:
        self.events[event] = round(self.now(), 3)
        return self.events[event]

    def hold(self, seconds: float) -> None:
        """Lets the traffic run for `seconds` (a measurement period, not a readiness wait)."""
        self._stop.wait(seconds)

    @property
    def title_prefix(self) -> str:
        return f"relfault-{self.label}-{self.tag}"

    # --- the clients ----------------------------------------------------------------------
    def _running(self) -> bool:
        return not self._stop.is_set() and self.now() < self.max_seconds

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _send(self, client, kind, method, base, path, **kwargs) -> Call:
        start = self.now()
        try:
            response = client.request(method, base + path, **kwargs)
            call = Call(kind, method, path, round(start, 4), round(self.now() - start, 4),
                        response.status_code, cache=response.headers.get("X-Cache", ""))
        except httpx.HTTPError as error:
            call = Call(kind, method, path, round(start, 4), round(self.now() - start, 4),
                        0, error=type(error).__name__)
        return call

    def _page(self, rng, kind) -> str:
        ids, sellers = self.targets.listing_ids, self.targets.seller_ids
        if kind == "cached" and self.cached_paths:
            return rng.choice(self.cached_paths)
        if kind == "fresh":
            with self._lock:
                self._fresh += 1
                number = self._fresh
            return f"/search?q=fresh{self.tag}x{number}"
        roll = rng.random()
        if roll < 0.15:
            return "/"
        if roll < 0.60:
            return f"/listings/{rng.choice(ids)}"
        if roll < 0.80:
            return f"/search?q={rng.choice(SEARCH_WORDS)}"
        return f"/sellers/{rng.choice(sellers)}"

    def _read(self, number: int) -> None:
        rng = random.Random(self.seed * 1000 + number)
        kinds, weights = zip(*self.mix.items())
        # no keep-alive: each request is a new connection, like many separate visitors, so a
        # dead instance shows up as refused connections and not only as broken pooled ones
        with httpx.Client(timeout=self.timeout, follow_redirects=False,
                          limits=httpx.Limits(max_keepalive_connections=0)) as client:
            while self._running():
                kind = rng.choices(kinds, weights)[0]
                self._record(self._send(client, kind, "GET", self.stack.web_url,
                                        self._page(rng, kind)))
                self._stop.wait(self.think)

    def _write_loop(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while self._running():
                self.write(client)
                self._stop.wait(self.write_every)

    def write(self, client: httpx.Client | None = None) -> Call:
        """POSTs one listing with a unique title; returns (and records) what the client saw."""
        with self._lock:
            self._written += 1
            sequence = self._written
        title = f"{self.title_prefix}-{sequence:05d}"
        token = self.targets.tokens[sequence % len(self.targets.tokens)]
        own = client is None
        client = client or httpx.Client(timeout=self.timeout)
        try:
            call = self._send(client, "write", "POST", self.stack.experience_url,
                              "/exp/v1/listings",
                              json={"title": title, "price": f"{sequence % 500}.25",
                                    "description": "Written during a fault experiment."},
                              headers={"Authorization": f"Bearer {token}"})
        finally:
            if own:
                client.close()
        call.title = title
        self._record(call)
        return call


# --- what the database holds ------------------------------------------------------------------

def stored_titles(stack, prefix: str) -> Counter:
    """How many listings carry each title starting with `prefix`: straight from the SQLite
    file (read-only), or through the entity API for PostgreSQL."""
    if stack.config.db == "sqlite":
        with sqlite3.connect(f"file:{stack.config.sqlite_path}?mode=ro", uri=True,
                             timeout=30) as connection:
            rows = connection.execute("SELECT title FROM entity_listing WHERE title LIKE ?",
                                      (prefix + "%",)).fetchall()
        return Counter(title for (title,) in rows)
    counts, offset = Counter(), 0
    with httpx.Client(timeout=15.0) as http:
        for _ in range(1000):  # bounded: 100 000 listings at most
            page = http.get(f"{stack.entity_url}/entity/v1/listings",
                            params={"q": prefix, "status": "any", "limit": 100,
                                    "offset": offset},
                            headers={"X-Service-Token": stack.service_token}).json()["data"]
            counts.update(item["title"] for item in page["items"]
                          if item["title"].startswith(prefix))
            offset += 100
            if offset >= page["count"]:
                break
    return counts


def write_accounting(calls: list[Call], stored: Counter) -> dict:
    """Acknowledged (201) writes must be stored exactly once; unacknowledged ones at most once."""
    writes = [call for call in calls if call.kind == "write"]
    acknowledged = {call.title for call in writes if call.status == 201}
    unacknowledged = {call.title for call in writes if call.status != 201}
    return {
        "writes": len(writes),
        "acknowledged": len(acknowledged),
        "lost": sum(1 for title in acknowledged if stored[title] == 0),
        "duplicated": sum(1 for title, count in stored.items() if count > 1),
        "unacknowledged": len(unacknowledged),
        "unacknowledged_stored": sum(1 for title in unacknowledged if stored[title] == 1),
        "unknown_stored": sum(1 for title in stored if title not in acknowledged | unacknowledged),
    }


# --- the faults --------------------------------------------------------------------------------

@dataclass
class Fault:
    key: str
    name: str  # as the table shows it
    inject: Callable  # inject(stack, context) -> None; may set context["detection_s"]
    repair: Callable  # repair(stack, context, traffic) -> None; returns once it is back
    single_instance: bool = False  # the zero-GET-error target applies
    mix: dict = field(default_factory=lambda: {"page": 1.0})
    how: str = ""


def _kill(name):
    def inject(stack, context):
        stack.kill(name)
        context["detection_s"] = round(stack.wait_for_server_state(name, "DOWN", timeout=15), 3)

    def repair(stack, context, traffic):
        stack.start(name)  # returns once healthy and UP in HAProxy again

    return inject, repair


def _redis_inject(stack, context):
    stack.stop("redis")


def _redis_repair(stack, context, traffic):
    stack.start("redis")
    # back in service when a page is cached again (the web tier's breaker closed): poll
    deadline = time.monotonic() + 20
    with httpx.Client(timeout=5.0) as http:
        while time.monotonic() < deadline:
            states = {http.get(stack.web_url + "/").headers.get("X-Cache") for _ in range(2)}
            if states & {"HIT", "MISS", "STALE"}:
                return
            time.sleep(0.1)
    raise TimeoutError("pages were still not cached 20 s after Redis came back")


def _entity_tier_inject(stack, context):
    for instance in stack.instances("entity"):
        stack.kill(instance.name)


def _entity_tier_repair(stack, context, traffic):
    _start_together(stack, [instance.name for instance in stack.instances("entity")])
    _until_a_write_is_acknowledged(traffic)


def _start_together(stack, names):
    """Starts processes side by side (as a supervisor restarting them all would), each
    returning once healthy and back in HAProxy's rotation."""
    failures = []

    def start(name):
        try:
            stack.start(name)
        except Exception as error:  # noqa: BLE001 - reported below, after all have tried
            failures.append(f"{name}: {error}")

    threads = [threading.Thread(target=start, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=stack.config.startup_timeout + 30)
    if failures:
        raise RuntimeError("; ".join(failures))


def _until_a_write_is_acknowledged(traffic, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if traffic.write().status == 201:
            return
        time.sleep(0.1)
    raise TimeoutError(f"no write was acknowledged {timeout:.0f} s after the repair")


class _WriteLock:
    """Another process's write lock on the SQLite database (as a long migration, a backup or
    a VACUUM would hold): readers go on (WAL), writers wait for it."""

    def __init__(self, path):
        self.connection = sqlite3.connect(path, timeout=30, isolation_level=None,
                                          check_same_thread=False)
        self.connection.execute("BEGIN EXCLUSIVE")

    def release(self):
        self.connection.execute("ROLLBACK")
        self.connection.close()


def _database_inject(stack, context):
    if stack.config.db == "postgres":
        stack.stop("postgres")  # a fast shutdown: every connection is cut
    else:
        context["lock"] = _WriteLock(stack.config.sqlite_path)


def _database_repair(stack, context, traffic):
    if stack.config.db == "postgres":
        stack.start("postgres")
    else:
        context.pop("lock").release()
    _until_a_write_is_acknowledged(traffic)


# The faults `run_faults` knows, by key, as a profile or a notebook names them ("database" is
# the database fault of whichever database the stack has).
FAULT_KEYS = {
    "redis": "Redis stopped",
    "kill_web1": "web1 killed",
    "kill_experience1": "experience1 killed",
    "kill_entity1": "entity1 killed",
    "entity_tier": "entity tier entirely down",
    "database": "database unavailable",
}


def faults(stack) -> list[Fault]:
    """The faults of the experiment, for this stack's layout and database."""
    found = [Fault("redis", "Redis stopped, then started", _redis_inject, _redis_repair,
                   how="stack.stop('redis'); stack.start('redis') (an empty cache)")]
    for tier in ("web", "experience", "entity"):
        name = f"{tier}1"
        inject, repair = _kill(name)
        found.append(Fault(f"kill_{name}", f"{name} killed, then restarted", inject, repair,
                           single_instance=True,
                           how=f"SIGKILL to {name} and its workers; stack.start('{name}')"))
    found.append(Fault("entity_tier", "entity tier entirely down", _entity_tier_inject,
                       _entity_tier_repair, mix={"cached": 0.5, "fresh": 0.5},
                       how="SIGKILL to every entity instance; start them again"))
    database = ("PostgreSQL stopped, then started" if stack.config.db == "postgres"
                else "SQLite locked for writes by another process")
    how = ("stack.stop('postgres') (fast shutdown); stack.start('postgres')"
           if stack.config.db == "postgres" else
           "BEGIN EXCLUSIVE held on the database file by another connection, then rolled back")
    found.append(Fault(f"database_{stack.config.db}", database, _database_inject,
                       _database_repair, how=how))
    return found


# --- running them ------------------------------------------------------------------------------

def ensure_whole(stack, progress=None) -> None:
    """Starts any process of the stack that is not running and waits until every instance is
    UP in HAProxy (a fault that went wrong must not leak into the next one)."""
    for name in stack.process_names():
        if not stack.is_alive(name):
            if progress:
                progress(f"restarting {name}, found dead before a fault")
            stack.start(name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = stack.server_states()
        if all(state.startswith("UP") and "/" not in state for state in states.values()):
            return
        time.sleep(0.1)
    raise TimeoutError(f"the stack is not whole: {stack.server_states()}")


def cache_epoch(stack):
    """The page cache's epoch version (bumped when every cached page must go stale, e.g.
    after the entity tier failed to tell Redis about a write), or None."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=stack.config.redis_port,
                         password=stack.credentials.redis_password, socket_timeout=2)
    try:
        return client.get("pc:v1:tag:*")
    except redis.RedisError:
        return None
    finally:
        client.close()


def warm(stack, paths, rounds: int = 2) -> None:
    """Renders each page so that it is in the page cache."""
    with httpx.Client(timeout=10.0) as http:
        for _ in range(rounds):
            for path in paths:
                http.get(stack.web_url + path)


def run_fault(stack, fault: Fault, targets: Targets, *, seconds: float, warmup: float = 2.0,
              settle: float = 3.0, readers: int = 3, progress=print) -> tuple[dict, pd.DataFrame]:
    """One fault under load: its table row and every call the clients made."""
    ensure_whole(stack, progress)
    cached = targets.untouched_pages()
    warm(stack, cached)
    context: dict = {"epoch_before": cache_epoch(stack)}
    with Traffic(stack, targets, fault.key, readers=readers, mix=fault.mix,
                 cached_paths=cached, max_seconds=warmup + seconds + settle + 120) as traffic:
        traffic.hold(warmup)
        traffic.mark("inject")
        fault.inject(stack, context)
        injected = traffic.mark("injected")
        traffic.hold(max(0.0, seconds - (injected - traffic.events["inject"])))
        traffic.mark("repair")
        fault.repair(stack, context, traffic)
        traffic.mark("restored")
        traffic.hold(settle)
        traffic.mark("end")
    epoch_after = cache_epoch(stack)
    if fault.key != "redis":  # a restarted Redis starts empty: no epoch to compare
        context["cache_invalidated"] = epoch_after != context["epoch_before"]
    stored = stored_titles(stack, traffic.title_prefix)
    calls = pd.DataFrame([asdict(call) for call in traffic.calls])
    calls["ok"] = [call.ok for call in traffic.calls]
    calls["fault"] = fault.key
    row = summarize(fault, calls, traffic.events, write_accounting(traffic.calls, stored),
                    context)
    if progress:
        progress(f"{fault.name}: {row['requests']} requests, {row['get_errors']} GET and "
                 f"{row['post_errors']} POST errors, recovered in {row['recovery_s']} s, "
                 f"{row['acknowledged']} writes acknowledged, {row['lost']} lost, "
                 f"{row['duplicated']} duplicated")
    return row, calls


def summarize(fault: Fault, calls: pd.DataFrame, events: dict, writes: dict,
              context: dict | None = None) -> dict:
    """The table row of one fault from its calls and events (times in seconds since the
    traffic started: inject, repair, restored, end)."""
    context = context or {}
    failed = calls[~calls["ok"]] if len(calls) else calls
    gets = calls[calls["method"] == "GET"]
    posts = calls[calls["method"] == "POST"]
    ends = failed["start"] + failed["seconds"] if len(failed) else pd.Series(dtype=float)
    after_repair = ends[ends > events["repair"]] if len(failed) else ends
    back = events["restored"] - events["repair"]
    if len(after_repair):
        back = max(back, float(after_repair.max()) - events["repair"])
    during = gets[(gets["start"] >= events["inject"]) & (gets["start"] < events["repair"])]
    row = {
        "fault": fault.name,
        "key": fault.key,
        "requests": int(len(calls)),
        "get_requests": int(len(gets)),
        "get_errors": int((~gets["ok"]).sum()) if len(gets) else 0,
        "post_requests": int(len(posts)),
        "post_errors": int((~posts["ok"]).sum()) if len(posts) else 0,
        "http_5xx": int((calls["status"] >= 500).sum()) if len(calls) else 0,
        "no_answer": int((calls["status"] == 0).sum()) if len(calls) else 0,
        "error_window_s": round(float(ends.max() - failed["start"].min()), 2)
        if len(failed) else 0.0,
        "detection_s": context.get("detection_s"),
        "recovery_s": round(back, 2),
        "fault_s": round(events["repair"] - events["inject"], 2),
        "get_p95_ms_during": round(float(during["seconds"].quantile(0.95)) * 1000, 1)
        if len(during) else None,
        # GETs sent while the fault was in place: how many were answered, and from the cache
        "get_during": int(len(during)),
        "get_ok_during": int(during["ok"].sum()) if len(during) else 0,
        "get_from_cache_during": int((during["ok"] & during["cache"].isin(["HIT", "STALE"]))
                                     .sum()) if len(during) else 0,
        **{key: writes[key] for key in ("acknowledged", "lost", "duplicated",
                                         "unacknowledged", "unacknowledged_stored")},
        "single_instance": fault.single_instance,
        # every cached page went stale during the run (the page cache's epoch was bumped)
        "cache_invalidated": context.get("cache_invalidated"),
        "how": fault.how,
        **{f"t_{event}": events.get(event) for event in ("inject", "repair", "restored")},
    }
    if "cached" in fault.mix:
        row.update(outage_pages(calls, events))
    return row


def outage_pages(calls: pd.DataFrame, events: dict) -> dict:
    """While the data tier is down: how many cached pages were still served, and how fast the
    others got their 503 page (from the moment the fault was in place)."""
    during = calls[(calls["start"] >= events.get("injected", events["inject"]))
                   & (calls["start"] < events["repair"])]
    cached = during[during["kind"] == "cached"]
    fresh = during[during["kind"] == "fresh"]
    refused = fresh[fresh["status"] == 503]
    return {
        "cached_served": int(cached["ok"].sum()),
        "cached_requests": int(len(cached)),
        "cached_from_cache": int(cached["cache"].isin(["HIT", "STALE"]).sum()),
        "fresh_503": int(len(refused)),
        "fresh_requests": int(len(fresh)),
        "fresh_503_p95_s": round(float(refused["seconds"].quantile(0.95)), 3)
        if len(refused) else None,
        "fresh_503_max_s": round(float(refused["seconds"].max()), 3) if len(refused) else None,
    }


def run_faults(stack, *, seconds: float = 6.0, keys=None, readers: int = 3, progress=print,
               run=None, warmup: float | None = None,
               settle: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every fault of `faults(stack)` (or those named in `keys`, a key also naming the faults
    it prefixes: "database" for "database_sqlite") in turn on one stack; returns
    the fault table and all calls. Each fault is held `seconds`, after `warmup` seconds of
    load (2, or a third of `seconds` when that is shorter) and followed by `settle` seconds
    of load once repaired (3, or half of `seconds`). With `run` (lab.rundir.RunDir), saves
    faults.csv, calls.csv and events into the run's reliability folder."""
    warmup = min(2.0, seconds / 3) if warmup is None else warmup
    settle = min(3.0, seconds / 2) if settle is None else settle
    targets = discover(stack)
    rows, frames = [], []
    for fault in faults(stack):
        if keys and not any(fault.key == key or fault.key.startswith(key + "_") for key in keys):
            continue
        row, calls = run_fault(stack, fault, targets, seconds=seconds, readers=readers,
                               warmup=warmup, settle=settle, progress=progress)
        rows.append(row)
        frames.append(calls)
    table = pd.DataFrame(rows)
    table.insert(1, "db", stack.config.db)
    calls = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    ensure_whole(stack, progress)
    if run is not None:
        save_tables(run, table, calls)
    return table, calls


def save_tables(run, table: pd.DataFrame, calls: pd.DataFrame) -> None:
    """faults.csv and calls.csv in the run's reliability folder."""
    folder = run.topic(TOPIC)
    table.to_csv(folder / "faults.csv", index=False)
    calls.to_csv(folder / "calls.csv", index=False)


# --- targets and figures -----------------------------------------------------------------------

def verdicts(table: pd.DataFrame, fuzzing: dict | None = None) -> dict:
    """The issue's targets, each with the numbers that decide it; `fuzzing` (fuzz_summary's
    totals) adds the no-5xx target of the fuzzing campaign."""
    single = table[table["single_instance"]]
    fuzzed = {}
    if fuzzing and "answers_5xx" in fuzzing:
        fuzzed = {"no_5xx_from_fuzzing": int(fuzzing["answers_5xx"]) == 0,
                  "fuzz_5xx": int(fuzzing["answers_5xx"])}
    return {
        **fuzzed,
        "single_instance_faults": list(single["key"]),
        "no_lost_or_duplicated_writes": bool((table["lost"] == 0).all()
                                             and (table["duplicated"] == 0).all()),
        "lost_writes": int(table["lost"].sum()),
        "duplicated_writes": int(table["duplicated"].sum()),
        "acknowledged_writes": int(table["acknowledged"].sum()),
        "no_get_errors_when_one_instance_dies": bool((single["get_errors"] == 0).all()),
        "get_errors_when_one_instance_dies": int(single["get_errors"].sum()),
    }


def timeline_figure(calls: pd.DataFrame, table: pd.DataFrame, path,
                    title: str = "Requests during each fault") -> Path:
    """One panel per fault: each request's response time at the moment it started, failed
    ones in red, with the injection and repair marked."""
    from matplotlib.figure import Figure

    keys = list(table["key"])
    fig = Figure(figsize=(10, 2.1 * len(keys) + 0.8))
    axes = fig.subplots(len(keys), 1, squeeze=False)[:, 0]
    for axis, key in zip(axes, keys):
        frame = calls[calls["fault"] == key]
        row = table[table["key"] == key].iloc[0]
        for ok, color, label in ((True, "#1f77b4", "answered"), (False, "#d62728", "failed")):
            part = frame[frame["ok"] == ok]
            marker = "x" if not ok else "."
            axis.scatter(part["start"], (part["seconds"] * 1000).clip(lower=1), s=9,
                         marker=marker, color=color, label=f"{label} ({len(part)})")
        for event, style in (("inject", "--"), ("repair", ":"), ("restored", "-.")):
            if pd.notna(row.get(f"t_{event}")):
                axis.axvline(row[f"t_{event}"], color="grey", linestyle=style, linewidth=1)
        axis.set_yscale("log")
        axis.set_ylim(1, max(20_000, float(frame["seconds"].max() * 1500) if len(frame) else 1))
        axis.set_ylabel("response (ms)")
        axis.set_title(f"{row['fault']}: {row['get_errors']} GET / {row['post_errors']} POST "
                       f"errors, recovered in {row['recovery_s']} s", fontsize=9, loc="left")
        axis.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("seconds since the load started (dashed: fault, dotted: repair, "
                        "dash-dot: back in service)")
    fig.suptitle(title, fontsize=12, fontweight="bold")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def save_summary(run, table: pd.DataFrame, *, fuzzing: dict | None = None,
                 security: list[dict] | None = None, extra: dict | None = None) -> Path:
    """summary.json in the run's reliability folder: the fault table, the targets' verdicts,
    the fuzzing counts and the security checks, for the write-up."""
    data = {"faults": json.loads(table.to_json(orient="records")),
            "verdicts": verdicts(table, fuzzing) if len(table) else {},
            "fuzzing": fuzzing or {}, "security": security or [], **(extra or {})}
    return run.save_json(TOPIC, "summary", data)


# --- the fuzzing campaign ----------------------------------------------------------------------

def fuzz_campaign(run, examples: int, *, randomized: bool = True, timeout: int = 1500) -> dict:
    """Runs tests/fuzz with `examples` generated cases per operation and per property
    (schemathesis against both OpenAPI documents, stateful runs, and the hypothesis
    properties of the forms and cache keys), randomized unless told otherwise. Returns
    {"counts": pytest's outcomes, "calls": one row per (tier, method, path, mode, status)
    with the number of calls, "failures": failed tests, "seconds": how long pytest ran};
    the raw files stay in the run's reliability folder."""
    import os

    from .testruns import run_pytest

    report = run.topic(TOPIC) / "fuzz_calls.json"
    report.unlink(missing_ok=True)
    env = {**os.environ, "FUZZ_EXAMPLES": str(examples), "FUZZ_PROPERTY_EXAMPLES": str(examples),
           "FUZZ_REPORT": str(report), "FUZZ_RANDOM": "1" if randomized else ""}
    started = time.monotonic()
    cases, counts, _ = run_pytest(run, TOPIC, ["tests/fuzz"], "fuzz", env=env, timeout=timeout)
    calls = pd.DataFrame(json.loads(report.read_text())["calls"]) if report.exists() else \
        pd.DataFrame(columns=["tier", "method", "path", "mode", "status", "calls"])
    return {"counts": counts, "calls": calls, "seconds": round(time.monotonic() - started, 1),
            "failures": cases[cases["outcome"].isin(["failed", "error"])]}


def fuzz_summary(calls: pd.DataFrame) -> dict:
    """Totals of a campaign's calls: all, per tier and mode, 5xx, and operations reached."""
    total = int(calls["calls"].sum())
    status = calls["status"].astype(int)
    by = lambda mask: int(calls.loc[mask, "calls"].sum())  # noqa: E731
    return {
        "calls": total,
        "entity_calls": by(calls["tier"] == "entity"),
        "experience_calls": by(calls["tier"] == "experience"),
        "positive_calls": by(calls["mode"] == "positive"),
        "negative_calls": by(calls["mode"] == "negative"),
        "answers_2xx": by(status.between(200, 299)),
        "answers_4xx": by(status.between(400, 499)),
        "answers_5xx": by(status >= 500),
        "operations": int(calls[status != 405].groupby(["tier", "method", "path"]).ngroups),
        "operations_with_a_2xx": int(calls[status.between(200, 299)]
                                     .groupby(["tier", "method", "path"]).ngroups),
    }


def fuzz_operations(calls: pd.DataFrame) -> pd.DataFrame:
    """One row per operation of the documents: calls and answers by class. Calls with a
    method the path does not have (schemathesis's 405 probes) are one row per tier."""
    frame = calls.copy()
    status = frame["status"].astype(int)
    frame["class"] = pd.cut(status, [0, 299, 399, 499, 599], labels=["2xx", "3xx", "4xx", "5xx"])
    probes = status == 405
    frame.loc[probes, "method"] = "other"
    frame.loc[probes, "path"] = "(methods the document does not list)"
    table = frame.pivot_table(index=["tier", "method", "path"], columns="class", values="calls",
                              aggfunc="sum", fill_value=0, observed=False)
    table["calls"] = table.sum(axis=1)
    return table.reset_index()
