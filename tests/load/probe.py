"""A locustfile with one user that asks for one URL (by default "/", expecting "ok") in a
closed loop, as fast as it can.

Pointed at HAProxy answering by itself or at the constant WSGI app, it measures the load
generator's own ceiling on this machine: if the site's throughput is far below what locust can
send to a server that does no work, the generator is not what limits the site's figures."""
from __future__ import annotations

import os
import random

from locust import FastHttpUser, events, task
from locust.runners import MasterRunner

import plumbing
from plumbing import StepShape  # noqa: F401  (locust picks the shape up here)
from lab import traffic

PROBE_PATH = os.environ.get("LOAD_PROBE_PATH") or "/"
# What a good answer contains: "ok" from the constant servers, a page marker for a site page
# (the wrk cross-check sends the probe to one of the site's pages).
PROBE_EXPECT = os.environ.get("LOAD_PROBE_EXPECT") or "ok"
# No think time by default: a closed loop where each user has one request in flight.
THINK_TIME = traffic.think_time(default=(0.0, 0.0))


@events.test_start.add_listener
def start(environment, **_):
    if not isinstance(environment.runner, MasterRunner):
        plumbing.ready()


class Probe(FastHttpUser):
    network_timeout = 10.0  # see Visitor in locustfile.py
    connection_timeout = 5.0
    def wait_time(self):
        return random.uniform(*THINK_TIME)

    @task
    def constant(self):
        with self.client.get(PROBE_PATH, name="constant", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(plumbing.answer(response))
            elif PROBE_EXPECT not in (response.text or ""):
                response.failure(f"the answer lacks {PROBE_EXPECT!r}")
            else:
                response.success()
