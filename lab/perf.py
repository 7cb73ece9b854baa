"""The performance experiments the notebooks call. Each is a function of a run directory and a
profile ("quick" for CI and a first look, "full" for the write-up, or a PerfProfile) that
starts what it needs, measures, stops everything it started, saves its raw files, its tidy
result frame (CSV) and its figures under <run>/perf/, and returns the frame:

    from lab import perf
    steps = perf.step_load(run_dir, "quick")          # one row per load step
    modes = perf.cache_modes(run_dir, "quick")        # one row per cache mode
    layouts = perf.web_instances(run_dir, "quick")    # one row per web-tier layout
    ceiling = perf.ceiling(run_dir, "quick")          # one row per server/tool
    check = perf.crosscheck(run_dir, "quick")         # locust and wrk on the same page
    fits = perf.scalability(run_dir, steps)           # USL/Amdahl fits and predictions
    frames = perf.run_all(run_dir, "quick")           # the profile's experiments
    again = perf.analyse_step_load(prefix, run_dir)   # a step load on disk, nothing runs

Frames carry units in their column names (rps, p95_ms, error_rate as a fraction, *_pct) and
whatever a notebook narrates beside them in `frame.attrs` (saturation point, generator
verdict, figure paths). Every stack runs on its own free ports with its own SQLite database in
the run directory, and every load is bounded in time and sent only to 127.0.0.1."""
from __future__ import annotations

import json
import math
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from . import loadstats, loadtest, plots, scalability as usl, traffic

TOPIC = "perf"
CACHE_MODES = ("off", "ttl", "invalidate", "django")
# Every experiment, in the order run_all runs them; a profile runs some or all of them.
EXPERIMENTS = ("ceiling", "step_load", "crosscheck", "scalability", "cache_modes",
               "web_instances")
# A page of the site for the locust/wrk cross-check, and what its body must contain.
CROSSCHECK_PAGE = ("/", 'id="newest-heading"')
# locust's throughput on the cross-check page as a share of wrk's that counts as agreement
CROSSCHECK_AGREEMENT = 0.8
# What starting one stack costs on a quiet two-core machine (about 6.5 s measured, with the
# run's database already seeded): the unit of the profiles' time budgets (planned_seconds).
STACK_START_S = 7.0


@dataclass(frozen=True)
class PerfProfile:
    name: str
    # the step load: warm-up, then +step_users every step_s seconds up to max_users
    warmup_s: float
    step_s: float
    step_users: int
    max_users: int
    # A/B comparisons (cache modes, layouts): one constant load, below the saturation point
    # of the slowest configuration so that every configuration is measured, not just queued.
    # The measured step follows a warm-up at the same load, so all of it counts (no ramp).
    compare_users: int
    compare_warmup_s: float
    compare_s: float
    # wrk and the locust probe: seconds per measurement and connections (closed loop)
    wrk_s: float
    wrk_connections: int
    # Seconds between a visitor's actions. Compressed (real people pause for seconds): each
    # simulated user stands for several real ones, so the site saturates at a user count one
    # load generator process on this machine can hold.
    think_time: tuple = (0.2, 0.8)
    # web-tier layouts: instance counts (with the stack's default workers) and, for the same
    # total worker count, (instances, workers) splits applied to every tier
    web_counts: tuple = (3, 2, 1)
    worker_splits: tuple = ((1, 6), (2, 3), (3, 2))
    cache_modes: tuple = CACHE_MODES
    # which of EXPERIMENTS run_all runs
    experiments: tuple = EXPERIMENTS
    # the ceiling's locust probe against HAProxy alone (the generator's own limit)
    locust_probe: bool = True
    # the cross-check's warm-up before locust's and before wrk's measurement
    crosscheck_warmup_s: float = 2.0

    def step_shape(self) -> traffic.StepLoad:
        return traffic.StepLoad(step_users=self.step_users, step_seconds=self.step_s,
                                max_users=self.max_users, warmup_seconds=self.warmup_s)

    def compare_shape(self) -> traffic.StepLoad:
        return traffic.constant_load(self.compare_users, self.compare_s, self.compare_warmup_s)


PROFILES = {
    # a first look in about half a minute of load: the ceiling, a short step load with enough
    # steps for the USL fit, the cross-check and the fit; the cache modes are compared in the
    # caching notebook, the layouts only in the full profile
    "quick": PerfProfile("quick", warmup_s=2, step_s=3, step_users=20, max_users=80,
                         compare_users=25, compare_warmup_s=3, compare_s=6, wrk_s=1,
                         wrk_connections=8, web_counts=(3, 1), worker_splits=((1, 6),),
                         experiments=("ceiling", "step_load", "crosscheck", "scalability"),
                         locust_probe=False, crosscheck_warmup_s=1),
    # the write-up's figures: steps long enough for stable p99s (8 s measured after each
    # ramp), up to a load that saturates a quiet two-core machine too (about 100 users)
    "full": PerfProfile("full", warmup_s=5, step_s=10, step_users=20, max_users=140,
                        compare_users=30, compare_warmup_s=3, compare_s=8, wrk_s=5,
                        wrk_connections=8),
}


def get_profile(profile="quick", **overrides) -> PerfProfile:
    """A named profile (or a PerfProfile) with some fields replaced, e.g.
    get_profile("full", max_users=100)."""
    base = PROFILES[profile] if isinstance(profile, str) else profile
    return replace(base, **overrides) if overrides else base


def planned_seconds(profile="quick") -> dict:
    """The time budget of each experiment the profile runs, and their "total": the configured
    load and measurement durations plus STACK_START_S for each stack started. (Each locust or
    wrk run also costs a second or two of start-up and reporting, not counted here.)"""
    profile = get_profile(profile)
    compare = profile.compare_warmup_s + profile.compare_s
    splits = [split for split in profile.worker_splits
              if split != (max(profile.web_counts), _split_workers(profile.worker_splits,
                                                                   max(profile.web_counts)))]
    plan = {
        "ceiling": 3 * profile.wrk_s + (1 + profile.wrk_s) * profile.locust_probe,
        "step_load": STACK_START_S + profile.step_shape().duration_s,
        "crosscheck": 2 * (profile.crosscheck_warmup_s + profile.wrk_s),
        "scalability": 0.0,
        "cache_modes": len(profile.cache_modes) * (STACK_START_S + compare),
        "web_instances": (STACK_START_S + len(profile.web_counts) * compare
                          + len(splits) * (STACK_START_S + compare)),
    }
    if "step_load" not in profile.experiments and "crosscheck" in profile.experiments:
        plan["crosscheck"] += STACK_START_S  # it starts its own stack then
    plan = {name: seconds for name, seconds in plan.items() if name in profile.experiments}
    plan["total"] = sum(plan.values())
    return plan


# --- where things go ------------------------------------------------------------------------

def _rundir(run_dir):
    """lab.rundir.RunDir when it is there (it records every command a run executes), else a
    plain folder."""
    if hasattr(run_dir, "topic"):
        return run_dir
    try:
        from .rundir import RunDir
    except ImportError:  # pragma: no cover - the report's RunDir is part of the lab
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        return Path(run_dir)
    return RunDir(run_dir)


def _folder(run_dir, *parts) -> Path:
    root = run_dir.path if hasattr(run_dir, "path") else Path(run_dir)
    folder = root.joinpath(TOPIC, *parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _save(frame: pd.DataFrame, run_dir, name: str) -> pd.DataFrame:
    path = _folder(run_dir) / f"{name}.csv"
    frame.to_csv(path, index=False)
    frame.attrs["csv"] = str(path)
    summary = {key: value for key, value in frame.attrs.items()}
    (_folder(run_dir) / f"{name}.json").write_text(json.dumps(summary, indent=2, default=str))
    return frame


# --- stacks -----------------------------------------------------------------------------------

@contextmanager
def running_stack(run_dir, name, progress=None, **options):
    """A stack for one configuration (StackConfig fields as keywords), on free ports, with its
    state and logs in <run>/perf/stacks/<name>/ and the run's own SQLite database, shared by
    the experiment's stacks (so the user's data/marketplace.sqlite3 is never touched)."""
    from infra import Stack, StackConfig, free_port_offset

    config = StackConfig(run_dir=_folder(run_dir, "stacks", name),
                         sqlite_path=_database(run_dir), **options)
    config = config.replace(port_offset=free_port_offset(config))
    stack = Stack(config, progress=progress)
    started = time.monotonic()
    with stack.running():
        stack.startup_s = round(time.monotonic() - started, 1)
        prewarm(stack.web_url, stack.config.web * stack.config.workers)
        stack.slowstart_s = round(wait_out_slowstart(stack), 1)
        yield stack


def _database(run_dir) -> Path:
    """<run>/perf/marketplace.sqlite3: in a lab run, a copy of the run's seeded database
    (lab.stacks.pristine_database, made once per run), else seeded by the first stack that
    starts."""
    path = _folder(run_dir) / "marketplace.sqlite3"
    if not path.exists() and hasattr(run_dir, "topic"):
        from .stacks import pristine_database

        shutil.copy2(pristine_database(run_dir), path)
    return path


def wait_out_slowstart(stack, timeout=20.0) -> float:
    """Waits until HAProxy no longer throttles any server. A server that comes UP while
    HAProxy runs (one restarted, or marked DOWN by a check during a busy start) gets its
    traffic and connection slots ramped up over `slowstart` (infra/haproxy/haproxy.cfg); a
    load that starts inside that ramp would measure the ramp, not the layout. The stats CSV's
    `throttle` field is set only while a server is in slow start.
    https://docs.haproxy.org/2.6/management.html#9.1 Returns the seconds waited."""
    from infra.load_balancer import read_stats

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            rows = read_stats(stack.stats_url, stack.stats_auth)
        except Exception:  # noqa: BLE001 - a stats page that does not answer ends the wait
            break
        throttled = [row["svname"] for row in rows
                     if row["svname"] not in ("FRONTEND", "BACKEND")
                     and (row.get("throttle") or "100") != "100"]
        if not throttled:
            break
        time.sleep(0.2)
    return time.monotonic() - started


def prewarm(base_url, rounds=2, timeout=20.0):
    """A few requests of every page kind before any load, `rounds` visitors side by side: a
    fresh gunicorn worker opens its connection pools and fills its template cache on its first
    requests, and a crowd of users arriving at a cold stack measures that, not the site.
    Side by side, so that HAProxy's connections reach many workers, not one kept-alive one."""
    import httpx
    from concurrent.futures import ThreadPoolExecutor

    def visit(_):
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            try:
                home = client.get("/").text
                paths = ["/search?q=desk", "/login"]
                paths += [f"/listings/{i}" for i in traffic.listing_ids(home)[:2]]
                paths += [f"/sellers/{i}" for i in traffic.seller_ids(home)[:1]]
                for path in paths:
                    client.get(path)
            except httpx.HTTPError:
                pass  # the load test itself reports a site that does not answer

    with ThreadPoolExecutor(max_workers=max(1, rounds)) as pool:
        list(pool.map(visit, range(max(1, rounds))))


def _stack_columns(stack) -> dict:
    config = stack.config
    return {"web": config.web, "experience": config.experience, "entity": config.entity,
            "workers": config.workers, "threads": config.threads, "db": config.db,
            "cache": config.cache,
            # most of an experiment's wall time on this machine: worth seeing beside it
            "stack_startup_s": getattr(stack, "startup_s", math.nan),
            "slowstart_wait_s": getattr(stack, "slowstart_s", math.nan)}


# --- one locust measurement -------------------------------------------------------------------

def _site_env(run_dir) -> dict:
    """Every stack of a run serves the same database, so what the locustfile finds on the
    site's pages in the first run holds for the others."""
    return {"LOAD_SITE_FILE": str(_folder(run_dir) / "site.json")}


def _measure(run_dir, folder, name, url, shape, profile, **kwargs):
    """One constant-load locust run of the personas (profile.compare_shape()); returns (run,
    its measured step rows). The step follows a warm-up at the same number of users, so no
    users arrive in it: the whole step is measured, none of it left out as a ramp."""
    run = loadtest.run_locust(folder, name, url, shape, think_time=profile.think_time,
                              run_dir=run_dir, env=_site_env(run_dir), **kwargs)
    return run, run.steps(settle_s=0.0)


def _flatten_generator(run) -> dict:
    verdict = run.generator()
    verdict["locust_cpu_warning"] = run.locust_cpu_warning()
    return verdict


# --- 1. step load of one configuration --------------------------------------------------------

@contextmanager
def _stack_or(stack, run_dir, name, progress, options):
    """The running stack a caller passed in, or one started (and stopped) for this call."""
    if stack is not None:
        yield stack
        return
    with running_stack(run_dir, name, progress, **(options or {})) as started:
        yield started


def step_load(run_dir, profile="quick", *, name="step_load", stack=None, stack_options=None,
              progress=None, settle_s=None) -> pd.DataFrame:
    """The site under a step load of the realistic personas (tests/load/locustfile.py): one
    row per step (users, rps, p50/p95/p99_ms, error_rate, concurrency, generator CPU).
    attrs: saturation (lab.loadstats.Saturation as a dict), failures_below_saturation,
    generator (verdict over the whole measured run), endpoints, figures, wall_s.
    Uses `stack` (a running infra.Stack) if given, else starts one with `stack_options`."""
    profile = get_profile(profile)
    run_dir = _rundir(run_dir)
    folder = _folder(run_dir, name)
    started = time.monotonic()
    with _stack_or(stack, run_dir, name, progress, stack_options) as site:
        run = loadtest.run_locust(folder, "locust", site.web_url, profile.step_shape(),
                                  think_time=profile.think_time, run_dir=run_dir,
                                  env=_site_env(run_dir))
        columns = _stack_columns(site)
    steps = analyse_step_load(run.prefix, run_dir, name=name, settle_s=settle_s,
                              columns=columns)
    steps.attrs.update({"profile": profile.name, "think_time_s": list(profile.think_time),
                        "wall_s": round(time.monotonic() - started, 1)})
    return _save(steps, run_dir, name)


def analyse_step_load(prefix, figures_dir=None, *, name="step_load", settle_s=None,
                      columns=None) -> pd.DataFrame:
    """The step-load frame, its attrs and figures from a locust run already on disk (its
    --csv prefix, e.g. <run>/perf/step_load/locust, or a committed sample): nothing runs.
    Figures go to `figures_dir` (a run directory, a RunDir, or a folder); none without it."""
    run = loadtest.LocustRun.open(prefix)
    steps = run.steps(settle_s)
    for key, value in (columns or {}).items():
        steps[key] = value
    saturation = loadstats.find_saturation(steps)
    requests, stages = run.requests(), run.stages()
    steps.attrs.update({
        "experiment": "step_load", "prefix": str(run.prefix),
        "saturation": saturation.as_dict(),
        "failures_below_saturation": loadstats.failures_below_saturation(
            steps, saturation, requests),
        "totals": loadstats.run_totals(requests),
        "generator": _flatten_generator(run), "discovered": run.meta.get("discovered"),
        "endpoints": loadstats.endpoint_summary(
            requests, float(steps["window_start_s"].min())).round(3).to_dict("records")})
    if figures_dir is None:
        return steps
    settle = loadstats.default_settle_s(stages) if settle_s is None else settle_s
    described = f" ({_describe(columns)})" if columns else ""
    steps.attrs["figures"] = [
        str(plots.step_load(steps, _figure(figures_dir, f"{name}_throughput_latency"),
                            title=f"Step load{described}", saturation=saturation,
                            caption=_step_caption(steps, saturation))),
        str(plots.latency_over_time(loadstats.latency_over_time(requests), stages,
                                    _figure(figures_dir, f"{name}_latency_over_time"),
                                    title=f"Latency over time under the step load{described}",
                                    cpu=run.cpu(), settle_s=settle))]
    return steps


def _describe(columns) -> str:
    return (f"{columns['web']} web x {columns['workers']} workers, cache {columns['cache']}, "
            f"{columns['db']}")


def _step_caption(steps, saturation) -> str:
    if saturation.reached:
        return (f"Throughput stopped scaling after {saturation.last_good_users} users "
                f"({saturation.last_good_rps:.0f} requests/s) while p95 climbed; steps "
                f"exclude warm-up and each ramp.")
    return (f"Throughput still grew at {int(steps['users'].max())} users "
            f"(peak {saturation.peak_rps:.0f} requests/s): the saturation point lies beyond.")


def _figure(run_dir, name) -> Path:
    if hasattr(run_dir, "figure_path"):
        return run_dir.figure_path(TOPIC, name)
    return _folder(run_dir) / f"{name}.png"


# --- 2. cache modes ------------------------------------------------------------------------------

def cache_modes(run_dir, profile="quick", *, modes=None, users=None, progress=None,
                stack_options=None) -> pd.DataFrame:
    """The same constant load (profile.compare_users realistic visitors) on each page-cache
    mode: one row per mode with rps, p50/p95/p99_ms, error_rate and the generator's CPU."""
    profile = get_profile(profile)
    if users:
        profile = replace(profile, compare_users=users)
    run_dir = _rundir(run_dir)
    rows = []
    for mode in modes or profile.cache_modes:
        folder = _folder(run_dir, "cache_modes")
        with running_stack(run_dir, f"cache_{mode}", progress,
                           **{**(stack_options or {}), "cache": mode}) as stack:
            run, steps = _measure(run_dir, folder, f"cache_{mode}", stack.web_url,
                                  profile.compare_shape(), profile)
            rows.append({"cache": mode, **_stack_columns(stack), **_row(steps, run),
                         **_cache_share(run)})
    frame = pd.DataFrame(rows)
    frame.attrs.update({"experiment": "cache_modes", "profile": profile.name,
                        "users": profile.compare_users})
    best = frame.loc[frame["rps"].idxmax()]
    frame.attrs["figures"] = [str(plots.comparison(
        frame, "cache", _figure(run_dir, "cache_modes"),
        title=f"Page cache modes at {profile.compare_users} users",
        caption=f"Same load, same stack, one cache mode each; '{best['cache']}' served the "
                f"most ({best['rps']:.0f} requests/s)."))]
    return _save(frame, run_dir, "cache_modes")


def _row(steps: pd.DataFrame, run) -> dict:
    """The one measured step of a constant-load run, with the generator's verdict."""
    step = steps.iloc[-1]
    keep = ["users", "requests", "failures", "error_rate", "rps", "p50_ms", "p95_ms",
            "p99_ms", "mean_ms", "max_ms", "concurrency", "window_s"]
    row = {key: step[key] for key in keep}
    # failures while users arrived (log-ins in on_start) are outside the measured window
    row["failures_whole_run"] = loadstats.run_totals(run.requests())["failures"]
    row.update(_flatten_generator(run))
    row["prefix"] = str(run.prefix)
    return row


def _cache_share(run) -> dict:
    """Only GETs can be served from the page cache (and not all of them: forms, logged-in
    pages): the share of requests that were GETs, for reading the cache comparison."""
    requests = run.requests()
    gets = requests[requests["method"] == "GET"]
    return {"get_share": len(gets) / len(requests) if len(requests) else math.nan}


# --- 3. web-tier layouts -------------------------------------------------------------------------

def web_instances(run_dir, profile="quick", *, counts=None, splits=None, progress=None,
                  stack_options=None) -> pd.DataFrame:
    """Throughput and latency at one constant load with 3, 2, 1 web instances, and with the
    same total worker count split differently. One row per layout, `series` telling the two
    series apart.

    Instances: one stack is started with max(counts) instances in every tier, then web
    instances are stopped one by one and HAProxy is waited on to take each out of rotation,
    so the other tiers stay as they were. Splits: (instances, workers) applied to every tier,
    so each tier keeps the same number of worker processes (the stack has one workers setting
    for all tiers); the split that is the instance series' first layout is not started twice."""
    profile = get_profile(profile)
    counts = sorted(counts or profile.web_counts, reverse=True)
    splits = list(splits if splits is not None else profile.worker_splits)
    most = max(counts)
    options = dict(stack_options or {})
    workers = _split_workers(splits, most, options.get("workers", 2))
    run_dir = _rundir(run_dir)
    folder = _folder(run_dir, "web_instances")
    rows = []
    with running_stack(run_dir, "web_instances", progress,
                       **{**options, "web": most, "experience": most, "entity": most,
                          "workers": workers}) as stack:
        for count in counts:
            for number in range(count + 1, most + 1):
                name = f"web{number}"
                if stack.is_alive(name):
                    stack.stop(name)
                    stack.wait_for_server_state(name, "DOWN", timeout=15)
            run, steps = _measure(run_dir, folder, f"web{count}", stack.web_url,
                                  profile.compare_shape(), profile)
            rows.append({"series": "web instances", "layout": f"{count} web",
                         **_stack_columns(stack), "web": count, **_row(steps, run)})
    for instances, split_workers in splits:
        layout = f"{instances}x{split_workers} workers"
        if (instances, split_workers) == (most, workers):
            rows.append({**rows[0], "series": "same total workers", "layout": layout})
            continue
        with running_stack(run_dir, f"split_{instances}x{split_workers}", progress,
                           **{**options, "web": instances, "experience": instances,
                              "entity": instances, "workers": split_workers}) as stack:
            run, steps = _measure(run_dir, folder, f"split_{instances}x{split_workers}",
                                  stack.web_url, profile.compare_shape(), profile)
            rows.append({"series": "same total workers", "layout": layout,
                         **_stack_columns(stack), **_row(steps, run)})
    frame = pd.DataFrame(rows)
    frame["web_workers_total"] = frame["web"] * frame["workers"]
    frame.attrs.update({"experiment": "web_instances", "profile": profile.name,
                        "users": profile.compare_users})
    frame.attrs["figures"] = [str(plots.comparison(
        frame, "layout", _figure(run_dir, "web_instances"),
        title=f"Web-tier layouts at {profile.compare_users} users",
        caption="On two cores, more instances or workers share the same CPU: "
                "compare throughput and tail latency, not just the count."))]
    return _save(frame, run_dir, "web_instances")


def _split_workers(splits, instances, default=2) -> int:
    """The workers of the split with `instances` instances (the instance series runs with
    them, and that split is then not started twice), else `default`."""
    return next((w for i, w in splits if i == instances), default)


# --- 4. the physical ceiling -------------------------------------------------------------------

def ceiling(run_dir, profile="quick", *, connections=None, workers=2, threads=4,
            locust_probe=None) -> pd.DataFrame:
    """What this machine can do at all, measured with wrk: HAProxy answering by itself,
    gunicorn returning a constant response (the stack's gunicorn settings, no Django), and
    HAProxy in front of that gunicorn. With `locust_probe` (by default the profile's),
    locust's own ceiling against HAProxy alone too: the most requests/s the generator can
    send, to compare with the site's. One row per (target, tool)."""
    profile = get_profile(profile)
    if locust_probe is None:
        locust_probe = profile.locust_probe
    connections = connections or profile.wrk_connections
    run_dir = _rundir(run_dir)
    folder = _folder(run_dir, "ceiling")
    rows = []
    with loadtest.constant_gunicorn(folder, workers=workers, threads=threads) as gunicorn:
        port = int(gunicorn.url.rstrip("/").rsplit(":", 1)[1])
        with loadtest.haproxy_ceiling(folder, backend_port=port) as haproxy:
            targets = [("haproxy alone", haproxy["alone"]),
                       ("gunicorn constant", gunicorn.url),
                       ("haproxy -> gunicorn constant", haproxy["proxied"])]
            for target, url in targets:
                result = loadtest.run_wrk(folder, target.replace(" ", "_").replace(
                    "->", "to"), url, connections=connections, seconds=profile.wrk_s,
                    run_dir=run_dir)
                rows.append({"target": target, "tool": "wrk", **_wrk_row(result)})
            if locust_probe:
                shape = traffic.constant_load(connections, profile.wrk_s, warmup_seconds=1)
                run = loadtest.run_locust(folder, "locust_probe", haproxy["alone"], shape,
                                          locustfile=loadtest.PROBE_LOCUSTFILE,
                                          think_time=(0, 0), run_dir=run_dir)
                rows.append({"target": "haproxy alone", "tool": "locust",
                             **_row(run.steps(), run)})
    frame = pd.DataFrame(rows)
    frame["label"] = frame["target"] + " (" + frame["tool"] + ")"
    frame.attrs.update({"experiment": "ceiling", "profile": profile.name,
                        "connections": connections, "gunicorn": f"{workers}x{threads} gthread"})
    frame.attrs["figures"] = [str(plots.comparison(
        frame, "label", _figure(run_dir, "ceiling"),
        title=f"The ceiling of this machine ({connections} connections, closed loop)",
        caption="No page of the site can be served faster than gunicorn returns a constant; "
                "the locust bar is the generator's own limit."))]
    return _save(frame, run_dir, "ceiling")


def _wrk_row(result: dict) -> dict:
    keep = ["connections", "requests", "errors", "error_rate", "rps", "p50_ms", "p75_ms",
            "p90_ms", "p95_ms", "p99_ms", "p99_9_ms", "mean_ms", "max_ms",
            "generator_cpu_mean_pct", "generator_cpu_p90_pct", "machine_cpu_mean_pct",
            "generator_saturated", "background_cpu_pct", "machine_was_busy"]
    return {key: result.get(key, math.nan) for key in keep}


# --- the wrk cross-check ------------------------------------------------------------------------

def crosscheck(run_dir, profile="quick", *, stack=None, page=CROSSCHECK_PAGE,
               connections=None, progress=None, stack_options=None) -> pd.DataFrame:
    """locust (the probe user, closed loop) and wrk on the same page of the site at the same
    concurrency: if their throughput and median agree, locust's figures can be trusted; if
    locust's are lower while its CPU is high, the generator was the limit. Uses `stack` (a
    running infra.Stack) if given, else starts one. One row per tool."""
    profile = get_profile(profile)
    connections = connections or profile.wrk_connections
    run_dir = _rundir(run_dir)
    folder = _folder(run_dir, "crosscheck")
    path, marker = page
    warmup = profile.crosscheck_warmup_s

    def measure(base):
        base = base.rstrip("/")
        shape = traffic.constant_load(connections, profile.wrk_s, warmup_seconds=warmup)
        run = loadtest.run_locust(folder, "locust", base, shape,
                                  locustfile=loadtest.PROBE_LOCUSTFILE, think_time=(0, 0),
                                  env={"LOAD_PROBE_PATH": path, "LOAD_PROBE_EXPECT": marker},
                                  run_dir=run_dir)
        locust_row = {"tool": "locust", **_row(run.steps(), run)}
        # wrk gets the same warm-up: its first seconds would otherwise fill the page cache
        loadtest.run_wrk(folder, "wrk_warmup", base + path, connections=connections,
                         seconds=warmup, run_dir=run_dir)
        result = loadtest.run_wrk(folder, "wrk", base + path, connections=connections,
                                  seconds=profile.wrk_s, run_dir=run_dir)
        return [locust_row, {"tool": "wrk", **_wrk_row(result)}]

    with _stack_or(stack, run_dir, "crosscheck", progress, stack_options) as site:
        rows = measure(site.web_url)
    frame = pd.DataFrame(rows)
    frame.insert(1, "page", path)
    frame["connections"] = connections
    locust_rps, wrk_rps = frame.set_index("tool").loc[["locust", "wrk"], "rps"]
    ratio = float(locust_rps / wrk_rps) if wrk_rps else math.nan
    frame.attrs.update({"experiment": "crosscheck", "profile": profile.name, "page": path,
                        "connections": connections, "locust_to_wrk_rps": ratio,
                        # below this, locust (Python, one core) is what limits its figures,
                        # whatever its CPU reading says: on a busy machine it waits for a core
                        "locust_limited": bool(ratio < CROSSCHECK_AGREEMENT)})
    frame.attrs["figures"] = [str(plots.comparison(
        frame, "tool", _figure(run_dir, "crosscheck"),
        title=f"locust and wrk on {path} ({connections} connections, closed loop)",
        caption=f"The same page at the same concurrency: locust reached "
                f"{frame.attrs['locust_to_wrk_rps']:.0%} of wrk's throughput."))]
    return _save(frame, run_dir, "crosscheck")


# --- 5. the scalability law ------------------------------------------------------------------------

def scalability(run_dir, steps: pd.DataFrame | None = None, *, x="concurrency",
                cores=(4, 8, 16), models=("usl", "amdahl"), profile="quick") -> pd.DataFrame:
    """USL and Amdahl fits of throughput against concurrency on a step load's rows (by
    default the `concurrency` column: requests in flight by Little's law, N = X * R, which is
    what the law's N means when users pause between requests; x="users" fits against users),
    and the USL scaled to machines with more cores. One row per fit: lam, sigma, kappa, their
    standard errors, r2, rmse_rps, mape_pct, peak_concurrency, peak_throughput_rps, notes.
    Runs `step_load` first when no steps are given."""
    run_dir = _rundir(run_dir)
    if steps is None:
        steps = step_load(run_dir, profile)
    points = steps[steps["rps"] > 0][[x, "rps"]].rename(columns={x: "concurrency"})
    fits = [usl.fit(points["concurrency"], points["rps"], model=model) for model in models]
    scaled = [usl.scale_to_cores(fits[0], count) for count in cores]
    frame = usl.fit_frame([*fits, *scaled])
    frame.insert(0, "basis", ["measured"] * len(fits) + ["scaled"] * len(scaled))
    frame.attrs.update({"experiment": "scalability", "x": x, "points": points.to_dict("list"),
                        "assumptions": usl.scale_to_cores.__doc__})
    frame.attrs["figures"] = [str(plots.scalability(
        points.rename(columns={"rps": "rps"}), fits, _figure(run_dir, "scalability_fit"),
        title="Universal Scalability Law fitted to the step load")),
        str(plots.scalability(points, [fits[0], *scaled], _figure(run_dir, "scalability_cores"),
                              title="USL scaled to machines with more cores (upper bound)",
                              caption="Assumes the bottleneck is CPU and no new shared one "
                                      "(the SQLite writer, one Redis) appears: an upper "
                                      "bound, not a forecast."))]
    return _save(frame, run_dir, "scalability")


# --- all of it --------------------------------------------------------------------------------------

def run_all(run_dir, profile="quick", progress=None) -> dict:
    """The experiments of the profile (profile.experiments) in turn; returns {name: frame} for
    those that ran, plus "timings": one row per experiment of EXPERIMENTS with `ran`, its
    seconds and its planned seconds (planned_seconds), saved as <run>/perf/timings.csv, so a
    notebook can say which were not run in this profile."""
    profile = get_profile(profile)
    wanted = set(profile.experiments)
    frames, timings = {}, {}
    started = time.monotonic()

    def timed(name, function, *args, **kwargs):
        if name not in wanted:
            return
        began = time.monotonic()
        frames[name] = function(*args, **kwargs)
        timings[name] = round(time.monotonic() - began, 1)

    timed("ceiling", ceiling, run_dir, profile)
    if wanted & {"step_load", "crosscheck"}:
        began = time.monotonic()
        with running_stack(_rundir(run_dir), "step_load", progress) as stack:
            stack_s = time.monotonic() - began
            timed("step_load", step_load, run_dir, profile, stack=stack)
            timed("crosscheck", crosscheck, run_dir, profile, stack=stack)
        first = next(name for name in ("step_load", "crosscheck") if name in timings)
        timings[first] = round(timings[first] + stack_s, 1)  # as planned_seconds counts it
    if "step_load" in frames:
        timed("scalability", scalability, run_dir, frames["step_load"])
        if "ceiling" in frames:
            _generator_headroom(frames["step_load"], frames["ceiling"], run_dir)
    timed("cache_modes", cache_modes, run_dir, profile, progress=progress)
    timed("web_instances", web_instances, run_dir, profile, progress=progress)
    planned = planned_seconds(profile)
    rows = [{"experiment": name, "ran": name in frames, "seconds": timings.get(name, math.nan),
             "planned_s": planned.get(name, math.nan)} for name in EXPERIMENTS]
    rows.append({"experiment": "total", "ran": True,
                 "seconds": round(time.monotonic() - started, 1),
                 "planned_s": planned["total"]})
    frames["timings"] = pd.DataFrame(rows)
    frames["timings"].attrs.update({"profile": profile.name,
                                    "ran": [name for name in EXPERIMENTS if name in frames],
                                    "not_run": [name for name in EXPERIMENTS
                                                if name not in frames]})
    _save(frames["timings"], _rundir(run_dir), "timings")
    return frames


def _generator_headroom(steps: pd.DataFrame, ceiling_frame: pd.DataFrame, run_dir):
    """How far the site's peak was below what locust can send on this machine at all (its
    probe against HAProxy answering by itself): the evidence that the generator was not the
    bottleneck, beside its CPU readings. Added to the step load's attrs and JSON."""
    probe = ceiling_frame[ceiling_frame["tool"] == "locust"]
    if probe.empty:
        return
    ceiling_rps = float(probe["rps"].iloc[0])
    peak = float(steps["rps"].max())
    steps.attrs["generator_ceiling_rps"] = ceiling_rps
    steps.attrs["generator_headroom"] = ceiling_rps / peak if peak else math.inf
    _save(steps, _rundir(run_dir), steps.attrs.get("name", "step_load"))


def profile_parameters(profile="quick") -> dict:
    """A profile as plain values, for a notebook's parameter table."""
    return asdict(get_profile(profile))
