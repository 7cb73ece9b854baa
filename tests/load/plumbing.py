"""What every locustfile of the lab shares: the step-load shape (set through environment
variables, see lab/traffic.py), a per-request log for exact per-step percentiles, and checking
a page by its content rather than by its status code alone.

Why a request log when locust writes CSVs: locust's history CSV holds percentiles over a
rolling ten-second window, sampled once a second, and its JSON file holds one histogram for the
whole run. Neither gives the exact p95 of one load step with its ramp-up left out; one row per
request does, for the price of appending a tuple (about a microsecond) per request."""
from __future__ import annotations

import csv
import json
import logging
import os
import sys
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]
if str(REPO_DIR) not in sys.path:
    sys.path.insert(0, str(REPO_DIR))

from locust import LoadTestShape, events  # noqa: E402
from locust.runners import MasterRunner  # noqa: E402

from lab import traffic  # noqa: E402

log = logging.getLogger("lab.load")

ENV_OUTPUT_PREFIX = "LOAD_OUTPUT_PREFIX"  # <prefix>_requests.csv and <prefix>_meta.json


class Clock:
    """The schedule's zero: the moment the test is ready to send measured traffic (after the
    locustfile has discovered ids and usernames), not the moment locust started."""
    t0: float | None = None

    @classmethod
    def start(cls):
        cls.t0 = time.time()

    @classmethod
    def elapsed(cls):
        return 0.0 if cls.t0 is None else time.time() - cls.t0


SCHEDULE = traffic.StepLoad.from_env()
META: dict = {}  # what the locustfile wants recorded beside the results (discovered data)


SETUP_TIMEOUT_S = float(os.environ.get("LOAD_SETUP_TIMEOUT") or 90)


class StepShape(LoadTestShape):
    """A warm-up, then steps of LOAD_STEP_USERS more users every LOAD_STEP_SECONDS up to
    LOAD_MAX_USERS; the run ends by itself after the last step.

    locust fires test_start (where a locustfile discovers its data and then calls ready()) in
    a greenlet of its own while this shape keeps ticking, so the schedule's clock waits for
    ready(); a set-up that does not finish within LOAD_SETUP_TIMEOUT seconds ends the run, and
    the lab reports it (no t0_epoch in the meta file)."""

    _first_tick = None

    def tick(self):
        if Clock.t0 is None:
            now = time.time()
            self._first_tick = self._first_tick or now
            if now - self._first_tick > SETUP_TIMEOUT_S:
                log.error("the locustfile's set-up did not finish in %.0f s", SETUP_TIMEOUT_S)
                return None
            first = SCHEDULE.stages()[0]
            return first.users, SCHEDULE.spawn
        return SCHEDULE.users_at(Clock.elapsed())


# --- the request log --------------------------------------------------------------------------

_rows: list[tuple] = []


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None,
            start_time=None, **_):
    started = (start_time or time.time()) - (Clock.t0 or 0.0)
    error = "" if exception is None else str(exception).splitlines()[0][:120]
    _rows.append((round(started, 4), request_type, name, round(response_time or 0.0, 3),
                  response_length or 0, int(exception is None), error))


def ready():
    """Called by a locustfile when its set-up is done: the schedule starts now."""
    Clock.start()


@events.test_stop.add_listener
def _write_outputs(environment, **_):
    prefix = os.environ.get(ENV_OUTPUT_PREFIX)
    if not prefix or isinstance(environment.runner, MasterRunner):
        return
    with open(f"{prefix}_requests.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start_s", "method", "name", "response_time_ms", "bytes", "ok",
                         "error"])
        writer.writerows(_rows)
    meta = {"t0_epoch": Clock.t0, "host": environment.host,
            "user_classes": sorted(cls.__name__ for cls in environment.user_classes),
            "schedule": [stage.as_dict() for stage in SCHEDULE.stages()],
            "spawn_rate": SCHEDULE.spawn, "think_time_s": list(traffic.think_time()),
            "requests_logged": len(_rows), **META}
    Path(f"{prefix}_meta.json").write_text(json.dumps(meta, indent=2))


# --- checking pages ---------------------------------------------------------------------------

def answer(response):
    """What came back, for a failure message: the HTTP status, or why there was none."""
    if not response.status_code:
        return f"no answer ({type(response.error).__name__}: {response.error})"
    return f"HTTP {response.status_code}"


def check_page(response, kind, status=200):
    """Marks a catch_response request failed unless it is a good page of its kind; returns
    the body of a good page, None otherwise."""
    if response.status_code != status:
        response.failure(f"{kind}: {answer(response)}")
        return None
    body = response.text or ""
    problem = traffic.page_problem(body, kind)
    if problem:
        response.failure(problem)
        return None
    response.success()
    return body
