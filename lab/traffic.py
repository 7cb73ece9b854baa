"""What the load test's visitors do, as plain functions: the step-load schedule, the skewed
popularity of listings, and reading ids, usernames and CSRF tokens out of the site's pages.

tests/load/locustfile.py imports this module; the analysis (lab.loadstats) uses the same
schedule to tell warm-up from measured steps. Nothing here imports locust: locust monkey-patches
the standard library with gevent as it is imported, which must not happen in pytest or in a
Jupyter kernel."""
from __future__ import annotations

import bisect
import html
import itertools
import os
import random
import re
from dataclasses import asdict, dataclass

# --- the step-load schedule ---------------------------------------------------------------

# Environment variables the locustfile reads, so lab code (which runs locust as a
# subprocess) can set the shape without a command-line option for each value.
ENV_STEP_USERS = "LOAD_STEP_USERS"
ENV_STEP_SECONDS = "LOAD_STEP_SECONDS"
ENV_MAX_USERS = "LOAD_MAX_USERS"
ENV_WARMUP_SECONDS = "LOAD_WARMUP_SECONDS"
ENV_WARMUP_USERS = "LOAD_WARMUP_USERS"
ENV_SPAWN_RATE = "LOAD_SPAWN_RATE"
ENV_WAIT = "LOAD_WAIT"  # think time "min,max" in seconds; "0,0" for a closed loop
ENV_REQUEST_LOG = "LOAD_REQUEST_LOG"  # where the locustfile writes one row per request
ENV_PASSWORD = "LOAD_PASSWORD"
ENV_SELLER_SHARE = "LOAD_SELLER_SHARE"  # fraction of users that are logged-in sellers

DEFAULT_PASSWORD = "marketplace-demo"  # app/entity/seed.py: every seeded user has it


@dataclass(frozen=True)
class Stage:
    """One stretch of constant load: users from start_s to end_s (seconds since the start)."""
    phase: str  # "warmup" or "step"
    step: int  # 0 for the warm-up, 1.. for the measured steps
    users: int
    start_s: float
    end_s: float

    def as_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class StepLoad:
    step_users: int = 10
    step_seconds: float = 15.0
    max_users: int = 60
    warmup_seconds: float = 10.0
    # Warm-up at the first step's load: it fills caches and connection pools and lets the
    # JIT-free but lazily-importing Django workers load every module before anything counts.
    warmup_users: int | None = None
    # Users started per second. A whole step's users at once is a burst no real audience makes,
    # so by default a step ramps in over about a second and a half.
    spawn_rate: float | None = None

    def __post_init__(self):
        if self.step_users < 1 or self.max_users < self.step_users:
            raise ValueError("need 1 <= step_users <= max_users")
        if self.step_seconds <= 0 or self.warmup_seconds < 0:
            raise ValueError("step_seconds must be positive and warmup_seconds not negative")

    @property
    def spawn(self) -> float:
        return float(self.spawn_rate or max(1.0, self.step_users / 1.5))

    def stages(self) -> list[Stage]:
        stages, clock = [], 0.0
        if self.warmup_seconds:
            users = self.warmup_users or self.step_users
            stages.append(Stage("warmup", 0, users, 0.0, self.warmup_seconds))
            clock = self.warmup_seconds
        levels = list(range(self.step_users, self.max_users + 1, self.step_users))
        if levels[-1] != self.max_users:
            levels.append(self.max_users)
        for number, users in enumerate(levels, start=1):
            stages.append(Stage("step", number, users, clock, clock + self.step_seconds))
            clock += self.step_seconds
        return stages

    @property
    def duration_s(self) -> float:
        return self.stages()[-1].end_s

    def users_at(self, run_time: float):
        """What LoadTestShape.tick answers: (users, spawn rate), or None when the test is over."""
        for stage in self.stages():
            if run_time < stage.end_s:
                return stage.users, self.spawn
        return None

    def to_env(self) -> dict[str, str]:
        env = {ENV_STEP_USERS: str(self.step_users), ENV_STEP_SECONDS: str(self.step_seconds),
               ENV_MAX_USERS: str(self.max_users), ENV_WARMUP_SECONDS: str(self.warmup_seconds)}
        if self.warmup_users:
            env[ENV_WARMUP_USERS] = str(self.warmup_users)
        if self.spawn_rate:
            env[ENV_SPAWN_RATE] = str(self.spawn_rate)
        return env

    @classmethod
    def from_env(cls, environ=None) -> "StepLoad":
        environ = os.environ if environ is None else environ

        def number(name, kind, default):
            raw = environ.get(name, "").strip()
            return kind(raw) if raw else default

        return cls(step_users=number(ENV_STEP_USERS, int, cls.step_users),
                   step_seconds=number(ENV_STEP_SECONDS, float, cls.step_seconds),
                   max_users=number(ENV_MAX_USERS, int, cls.max_users),
                   warmup_seconds=number(ENV_WARMUP_SECONDS, float, cls.warmup_seconds),
                   warmup_users=number(ENV_WARMUP_USERS, int, None),
                   spawn_rate=number(ENV_SPAWN_RATE, float, None))


def constant_load(users: int, seconds: float, warmup_seconds: float = 10.0) -> StepLoad:
    """One measured step at a fixed number of users (the shape for A/B comparisons)."""
    return StepLoad(step_users=users, step_seconds=seconds, max_users=users,
                    warmup_seconds=warmup_seconds)


def think_time(environ=None, default=(1.0, 3.0)) -> tuple[float, float]:
    """LOAD_WAIT="min,max" seconds between a visitor's actions."""
    environ = os.environ if environ is None else environ
    raw = environ.get(ENV_WAIT, "").strip()
    if not raw:
        return default
    low, _, high = raw.partition(",")
    low = float(low)
    high = float(high) if high.strip() else low
    if low < 0 or high < low:
        raise ValueError(f"{ENV_WAIT} must be 'min,max' with 0 <= min <= max, not {raw!r}")
    return low, high


# --- popularity -----------------------------------------------------------------------------

class Popularity:
    """Picks items with a Zipf-like skew: the item at rank r is chosen in proportion to
    1 / r**exponent. Real marketplaces look like this (a few listings get most of the views),
    and it matters here because a page cache's hit rate depends on the skew. The ranks are a
    seeded shuffle of the items so that popularity does not follow the id order."""

    def __init__(self, items, exponent=1.0, seed=7):
        items = list(dict.fromkeys(items))  # unique, in order
        if not items:
            raise ValueError("no items to choose from")
        random.Random(seed).shuffle(items)
        self.items = items
        weights = [1.0 / (rank ** exponent) for rank in range(1, len(items) + 1)]
        self._cumulative = list(itertools.accumulate(weights))

    def share_of_top(self, count) -> float:
        """The fraction of picks that go to the `count` most popular items."""
        count = min(count, len(self.items))
        return self._cumulative[count - 1] / self._cumulative[-1]

    def pick(self, rng=random):
        point = rng.random() * self._cumulative[-1]
        return self.items[bisect.bisect_right(self._cumulative, point)]


# Words that are in the seeded titles and descriptions (app/entity/seed.py), a few that are
# not (an empty result page is part of real traffic), and the empty query (all listings).
SEARCH_TERMS = ["desk", "bike", "guitar", "lamp", "laptop", "sofa", "camera", "kettle",
                "vintage", "oak", "piano", "helmet", "yoga", "snowboard", "blender",
                "monitor", "chair", "headphones", "tennis", "books", "",
                "spaceship", "unicorn saddle"]


# --- reading the site's pages -------------------------------------------------------------

_LISTING_LINK = re.compile(r'href="/listings/(\d+)"')
_SELLER_LINK = re.compile(r'href="/sellers/(\d+)"')
_USERNAME = re.compile(r'<p class="muted">@([A-Za-z0-9_.\-]+) ·')
_CSRF_INPUT = re.compile(r'<input[^>]*name="csrfmiddlewaretoken"[^>]*>')
_VALUE = re.compile(r'value="([^"]*)"')


def listing_ids(page: str) -> list[int]:
    """Ids of the listings a page links to, in order of first appearance."""
    return list(dict.fromkeys(int(match) for match in _LISTING_LINK.findall(page)))


def seller_ids(page: str) -> list[int]:
    return list(dict.fromkeys(int(match) for match in _SELLER_LINK.findall(page)))


def seller_username(page: str) -> str | None:
    """The @username on a seller's page (templates/web/seller.html)."""
    match = _USERNAME.search(page)
    return html.unescape(match.group(1)) if match else None


def csrf_token(page: str) -> str | None:
    """The csrfmiddlewaretoken hidden input of the first form on a page."""
    tag = _CSRF_INPUT.search(page)
    if not tag:
        return None
    value = _VALUE.search(tag.group(0))
    return html.unescape(value.group(1)) if value else None


# What a good answer of each page contains: a 200 is not enough (a template that renders the
# error page, or an empty grid, can come back as 200).
PAGE_MARKERS = {
    "home": ('id="newest-heading"', 'class="card"'),
    "listing": ('class="listing-title"', 'class="price price-lg"'),
    "seller": ('class="panel profile"', "member since"),
    "search": ('class="section-head search-head"',),
    "login": ('name="csrfmiddlewaretoken"', 'name="password"'),
    "listing_form": ('name="csrfmiddlewaretoken"', 'name="title"'),
    "logged_in": ('class="logout"',),
}
# Text that only the friendly error pages show (templates/web/503.html, error.html).
ERROR_MARKERS = ('class="error-page"',)


def page_problem(page: str, kind: str) -> str | None:
    """Why a page body is not a good page of its kind, or None when it is."""
    for marker in ERROR_MARKERS:
        if marker in page:
            return f"{kind} page is an error page"
    missing = [marker for marker in PAGE_MARKERS[kind] if marker not in page]
    if missing:
        return f"{kind} page lacks {missing[0]}"
    return None
