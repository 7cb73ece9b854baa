"""The marketplace's traffic, for locust: anonymous visitors who browse (home page, listings
with a skewed popularity, search, seller pages) and a small share of sellers who log in and
put things up for sale.

Run it headless as the lab does (lab/loadtest.py), e.g.

    LOAD_STEP_USERS=10 LOAD_STEP_SECONDS=15 LOAD_MAX_USERS=60 \\
    .venv/bin/locust -f tests/load/locustfile.py --headless --host http://127.0.0.1:8000 \\
        --csv data/runs/x/perf/site --csv-full-history --json-file data/runs/x/perf/site \\
        --html data/runs/x/perf/site.html

The step-load shape (tests/load/plumbing.py) ends the run by itself. Before the first user
starts, the locustfile reads real listing ids, seller ids and usernames from the site's own
pages, so it never assumes what the seed made (LOAD_SITE_FILE=path keeps what it found for the
next run against the same database)."""
from __future__ import annotations

import json
import os
import random
import re
import urllib.request
import uuid

from gevent.pool import Pool
from locust import FastHttpUser, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner

import plumbing
from plumbing import StepShape, check_page  # noqa: F401  (locust picks the shape up here)
from lab import traffic

THINK_TIME = traffic.think_time()
# lab.loadtest passes its SELLER_SHARE; 0.05 is the same default for a run by hand
SELLER_SHARE = float(os.environ.get(traffic.ENV_SELLER_SHARE) or 0.05)
PASSWORD = os.environ.get(traffic.ENV_PASSWORD) or traffic.DEFAULT_PASSWORD
# Search result pages read while discovering: spread over the whole catalogue so the popular
# listings are not all among the newest.
DISCOVERY_PAGES = int(os.environ.get("LOAD_DISCOVERY_PAGES") or 8)
DISCOVERY_SELLERS = int(os.environ.get("LOAD_DISCOVERY_SELLERS") or 10)


class Site:
    listings: traffic.Popularity | None = None
    sellers: traffic.Popularity | None = None
    usernames: list[str] = []
    _next_username = 0

    @classmethod
    def next_username(cls):
        name = cls.usernames[cls._next_username % len(cls.usernames)]
        cls._next_username += 1
        return name


def _fetch(host, path):
    with urllib.request.urlopen(host.rstrip("/") + path, timeout=10) as reply:
        return reply.read().decode("utf-8", "replace")


@events.test_start.add_listener
def discover(environment, **_):
    if isinstance(environment.runner, MasterRunner):
        return
    host = environment.host
    saved = os.environ.get("LOAD_SITE_FILE")
    if saved and os.path.exists(saved):
        # what an earlier run against the same database found: skips a dozen page loads
        _use(json.loads(open(saved).read()), source=saved)
        return
    # pages are fetched side by side (urllib is gevent-patched here): with the page cache off
    # and a busy machine, one page can take a second or two
    pool = Pool(8)
    first = _fetch(host, "/search")
    pages = int((re.search(r"page 1 of (\d+)", first) or [None, 1])[1])
    wanted = sorted({1 + (pages - 1) * i // max(1, DISCOVERY_PAGES - 1)
                     for i in range(DISCOVERY_PAGES)} - {1})
    listing_ids, seller_ids = traffic.listing_ids(first), traffic.seller_ids(first)
    for page in pool.map(lambda number: _fetch(host, f"/search?page={number}"), wanted):
        listing_ids += traffic.listing_ids(page)
        seller_ids += traffic.seller_ids(page)
    seller_ids = list(dict.fromkeys(seller_ids))
    usernames = [name for name in pool.map(
        lambda seller_id: traffic.seller_username(_fetch(host, f"/sellers/{seller_id}")),
        seller_ids[:DISCOVERY_SELLERS]) if name]
    if not listing_ids or not seller_ids:
        raise RuntimeError(f"found no listings on {host}/search: is the site seeded?")
    found = {"listing_ids": list(dict.fromkeys(listing_ids)), "seller_ids": seller_ids,
             "usernames": usernames, "search_pages": pages}
    if saved:
        with open(saved, "w") as handle:
            json.dump(found, handle)
    _use(found, source=host)


def _use(found, source):
    Site.listings = traffic.Popularity(found["listing_ids"], exponent=1.0, seed=7)
    Site.sellers = traffic.Popularity(found["seller_ids"], exponent=1.0, seed=11)
    Site.usernames = found["usernames"]
    plumbing.META.update({"discovered": {
        "source": source, "listings": len(Site.listings.items),
        "sellers": len(Site.sellers.items), "usernames": len(Site.usernames),
        "search_pages": found["search_pages"],
        "top10_listing_share": round(Site.listings.share_of_top(10), 3)}})
    plumbing.ready()


class Visitor(FastHttpUser):
    abstract = True
    # A hung request must become a failure inside its step, not vanish when the run stops
    # with it still in flight (locust records a request only when it ends).
    network_timeout = 10.0
    connection_timeout = 5.0

    def wait_time(self):
        low, high = THINK_TIME
        return random.uniform(low, high)

    def page(self, path, name, kind):
        with self.client.get(path, name=name, catch_response=True) as response:
            return check_page(response, kind)

    def home(self):
        self.page("/", "/", "home")

    def listing(self):
        listing_id = Site.listings.pick()
        self.page(f"/listings/{listing_id}", "/listings/[id]", "listing")

    def seller(self, seller_id=None):
        seller_id = seller_id or Site.sellers.pick()
        self.page(f"/sellers/{seller_id}", "/sellers/[id]", "seller")

    def search(self):
        term = random.choice(traffic.SEARCH_TERMS)
        # most people stay on the first page of results; some page on
        page = 1 if random.random() < 0.8 else random.randint(2, 4)
        query = f"q={term}" + (f"&page={page}" if page > 1 else "")
        self.page(f"/search?{query}", "/search?q=[term]&page=[n]", "search")


class Browser(Visitor):
    """An anonymous visitor: looks around, mostly at popular listings."""
    weight = max(1, round(100 * (1 - SELLER_SHARE)))

    @task(3)
    def visit_home(self):
        self.home()

    @task(6)
    def view_listing(self):
        self.listing()

    @task(3)
    def search_listings(self):
        self.search()

    @task(2)
    def view_seller(self):
        self.seller()


class Seller(Visitor):
    """A seeded user who logs in, looks at the site and their own page, and now and then puts
    something up for sale (which invalidates the cached home and search pages).

    Each seller logs in once, when it starts, and keeps its session: HAProxy lets one client
    address send 20 log-in POSTs in 10 s (infra/haproxy/haproxy.cfg), and every locust user
    comes from 127.0.0.1. A seller whose log-in fails stops; locust starts a new one (a new
    log-in) only when the next step changes the user count."""
    weight = max(1, round(100 * SELLER_SHARE))
    # A log-in hashes the password (PBKDF2, slow on purpose): the tiers wait up to 12 s for it
    # (UPSTREAM_SLOW_READ_TIMEOUT, app/marketplace/settings.py) within HAProxy's 15 s
    # `timeout server`. A client that gave up sooner would count a log-in the site completed
    # as a failure.
    network_timeout = 15.0

    def on_start(self):
        if not Site.usernames:
            raise StopUser()
        self.username = Site.next_username()
        form = self.page("/login", "/login [form]", "login")
        token = form and traffic.csrf_token(form)
        if not token:
            raise StopUser()
        with self.client.post("/login", name="/login [post]", catch_response=True,
                              data={"csrfmiddlewaretoken": token, "username": self.username,
                                    "password": PASSWORD, "next": "/"},
                              headers={"Referer": self.host + "/login"}) as response:
            # a good log-in redirects home, where the header now has a log-out button
            if check_page(response, "logged_in") is None:
                raise StopUser()
        self.own_id = None

    def on_stop(self):
        page = self.page("/", "/", "home")
        token = page and traffic.csrf_token(page)  # the log-out form in the header
        if token:
            self.client.post("/logout", name="/logout", data={"csrfmiddlewaretoken": token},
                             headers={"Referer": self.host + "/"})

    @task(2)
    def visit_home(self):
        self.home()

    @task(3)
    def view_listing(self):
        self.listing()

    @task(1)
    def view_seller(self):
        self.seller()

    @task(1)
    def sell_something(self):
        form = self.page("/listings/new", "/listings/new [form]", "listing_form")
        token = form and traffic.csrf_token(form)
        if not token:
            return
        title = f"Load test {random.choice(traffic.SEARCH_TERMS[:10])} {uuid.uuid4().hex[:8]}"
        data = {"csrfmiddlewaretoken": token, "title": title,
                "price": f"{random.uniform(5, 500):.2f}",
                "description": "Put up for sale by the lab's load test."}
        with self.client.post("/listings/new", name="/listings/new [post]", data=data,
                              catch_response=True,
                              headers={"Referer": self.host + "/listings/new"}) as response:
            # success redirects to the new listing's page, which shows its title
            body = check_page(response, "listing")
            if body is not None and title not in body:
                response.failure("the created listing's page does not show its title")
