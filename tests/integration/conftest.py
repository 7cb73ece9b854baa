"""Selenium integration tests: a real headless Chromium against the whole running stack
(HAProxy, every tier, Redis), through the load balancer, the way a person uses the site.

The stack: by default one small stack is started for these tests (two web instances, so that
load balancing and failover can be seen; one of each other tier; a small seeded SQLite
database; the invalidating page cache) in a temporary run directory, on ports moved to a free
offset, and stopped after the last test here. To run the tests against a stack that is already
running (quicker while writing tests, or to test `make up`'s stack), name its run directory:

    LAB_INTEGRATION_STACK=data/state .venv/bin/pytest tests/integration

It is then left running; the tests restart any instance they kill, and delete the accounts
(and with them the listings) they create.

The browser: one Chromium for all the tests here (starting one takes seconds); each test gets
it with every cookie cleared, so each starts as a new anonymous visitor.

Screenshots go to $LAB_SCREENSHOT_DIR (default data/runs/integration-latest/screenshots): one
per main page, taken by the test that shows it, listed with captions in index.json; and for a
failing test, failures/<test>.png and .html (the page as the browser had it)."""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings
from selenium.common.exceptions import NoAlertPresentException, WebDriverException

from infra import Stack, StackConfig, StackError, free_port_offset
from infra.config import REPO_DIR
from lab.browser import chrome, save_screenshot
from tests.integration.pages import Site

ENV_STACK = "LAB_INTEGRATION_STACK"
ENV_SCREENSHOTS = "LAB_SCREENSHOT_DIR"
DEFAULT_SCREENSHOTS = REPO_DIR / "data" / "runs" / "integration-latest" / "screenshots"
PASSWORD = "a sturdy passphrase 42"  # strong enough for the entity tier's validators


# --- the stack ------------------------------------------------------------------------------

def _random_free_offset(config: StackConfig) -> int:
    """A free port offset picked at random, so that two test sessions on one machine (CI and
    a developer, or this suite beside tests/stack) rarely try the same one."""
    offsets = list(range(10000, 24001, 250))
    for offset in random.sample(offsets, len(offsets)):
        try:
            return free_port_offset(config, start=offset, stop=offset)
        except StackError:
            continue
    raise StackError("no port offset has all the stack's ports free")


def _progress(*parts):
    print(*parts, flush=True)  # pytest shows it with the report of a test that failed


@pytest.fixture(scope="package")
def stack(tmp_path_factory, chromium):
    """The running stack the browser talks to (see the module docstring). (It asks for the
    browser only so that the browser starts first, and starts up while the stack does.)"""
    attach_to = os.environ.get(ENV_STACK)
    if attach_to:
        attached = Stack.attach(attach_to, progress=_progress)
        if attached is None or not attached.is_healthy():
            pytest.fail(f"{ENV_STACK}={attach_to}: no healthy stack is running there "
                        f"(`python -m infra status --run-dir {attach_to}` shows why)")
        yield attached  # the caller's: left running
        return
    home = tmp_path_factory.mktemp("integration-stack")
    config = StackConfig(
        web=2, experience=1, entity=1, workers=1, threads=4, cache="invalidate",
        run_dir=home / "state", sqlite_path=home / "marketplace.sqlite3",
        secrets_dir=home / "secrets", seed_users=20, seed_listings=200,
        extra_env={
            "LAB_FAST_HASHER": "1",  # sign-ups and log-ins in milliseconds
            # On two cores shared with other work (a load test, a notebook) a tier can take
            # more than the default 5 s to answer; the browser tests check what pages show,
            # not how fast they come, so the tiers wait longer before giving up with a 503
            # (but less than HAProxy's 15 s server timeout, infra/haproxy/haproxy.cfg).
            "LAB_UPSTREAM_READ_TIMEOUT": "12",
        },
        startup_timeout=60)  # generous, for the same reason
    for attempt in range(3):
        started = Stack(config.replace(port_offset=_random_free_offset(config)),
                        progress=_progress)
        try:
            started.up()
            break
        except StackError as error:
            # another process took one of the ports between the check and the start
            if "ports the stack needs are taken" not in str(error) or attempt == 2:
                raise
    try:
        yield started
    finally:
        started.down()


@dataclass
class Account:
    id: int
    username: str
    password: str
    name: str  # the display name the site shows (in the top bar: "Hi, <name>")
    token: str  # a session, as logging in would give


# People's names, so that the screenshots of logged-in pages read like the site in use.
NAMES = ["Maya Lindqvist", "Tom Okafor", "Ana Ribeiro", "Sam Whitfield", "Priya Natarajan",
         "Jonas Weber", "Lucia Romano", "Ben Adeyemi"]


class Accounts:
    """Accounts for tests: made through the experience API (quick; the tests of signing up
    use the form instead), and deleted with their listings when the test ends, so the home page
    shows the seeded listings again and an attached stack is left as it was found."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self._to_delete: list[int] = []

    def _entity(self, method: str, path: str, **kwargs) -> httpx.Response:
        # The entity tier is internal: only the service credential opens it.
        return httpx.request(method, f"{self.stack.entity_url}/entity/v1/{path}", timeout=10,
                             headers={"X-Service-Token": self.stack.service_token}, **kwargs)

    def create(self) -> Account:
        name = random.choice(NAMES)
        username = f"{name.split()[0].lower()}_{uuid.uuid4().hex[:8]}"
        response = httpx.post(f"{self.stack.experience_url}/exp/v1/signup", timeout=10, json={
            "username": username, "email": f"{username}@example.com", "password": PASSWORD,
            "password_confirm": PASSWORD})
        assert response.status_code == 201, response.text
        session = response.json()["data"]
        user_id = session["user"]["id"]
        self.delete_later(user_id)
        # signing up sets no display name (the site shows the username); a person's reads better
        renamed = self._entity("PATCH", f"users/{user_id}", json={"display_name": name})
        assert renamed.status_code == 200, renamed.text
        return Account(user_id, username, PASSWORD, name, session["token"])

    def delete_later(self, user_id: int | None) -> None:
        if user_id is not None:
            self._to_delete.append(user_id)

    def delete_all(self) -> None:
        # Deleting a user deletes their listings, and invalidates the cached pages that
        # showed them.
        for user_id in self._to_delete:
            self._entity("DELETE", f"users/{user_id}")
        self._to_delete.clear()


@pytest.fixture
def accounts(stack):
    made = Accounts(stack)
    yield made
    made.delete_all()


@pytest.fixture
def account(accounts) -> Account:
    """A fresh account, not logged in."""
    return accounts.create()


@pytest.fixture
def unique() -> str:
    """A word no listing or user has, to find a test's own listing among all the others."""
    return "zq" + uuid.uuid4().hex[:8]


# --- the browser ----------------------------------------------------------------------------

# The main pages, in the order a write-up shows them (index.json lists them in this order).
MAIN_PAGES = ["home", "listing", "seller", "search-results", "search-nothing-found", "login",
              "signup-errors", "new-listing-errors", "listing-created"]


class Screenshots:
    """The screenshots folder: one PNG per main page (the last test to take it wins), indexed
    in index.json for the write-up, and failures/ for failing tests."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.index_path = directory / "index.json"
        try:
            self.index = {entry["name"]: entry for entry in json.loads(self.index_path.read_text())}
        except (FileNotFoundError, ValueError, TypeError, KeyError):
            self.index = {}
        # failures of an earlier run would mislead whoever reads this folder
        shutil.rmtree(directory / "failures", ignore_errors=True)

    def save(self, driver, name: str, caption: str) -> Path:
        path = save_screenshot(driver, self.directory / f"{name}.png")
        self.index[name] = {"name": name, "file": path.name, "caption": caption,
                            "path": urlsplit(driver.current_url).path}
        order = {page: number for number, page in enumerate(MAIN_PAGES)}
        entries = sorted(self.index.values(), key=lambda entry: (
            order.get(entry["name"], len(order)), entry["name"]))
        self.index_path.write_text(json.dumps(entries, indent=2) + "\n")
        return path

    def save_failure(self, driver, test_name: str) -> list[Path]:
        folder = self.directory / "failures"
        folder.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)[-150:]
        saved = [folder / f"{stem}.html"]
        saved[0].write_text(driver.page_source)
        saved.append(save_screenshot(driver, folder / f"{stem}.png"))
        return saved


@pytest.fixture(scope="package")
def screenshots() -> Screenshots:
    return Screenshots(Path(os.environ.get(ENV_SCREENSHOTS) or DEFAULT_SCREENSHOTS).absolute())


class _Browser:
    """The package's one Chromium. It starts in a thread (a few seconds) while the stack
    starts (ten or more), and is started again if it crashed, so that one crash fails one test
    rather than every test after it."""

    def __init__(self):
        starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._starting = starter.submit(chrome, performance_log=True)
        starter.shutdown(wait=False)  # the thread ends when Chromium is up
        self.driver = None

    def get(self):
        if self._starting is not None:
            starting, self._starting = self._starting, None
            self.driver = starting.result()
        elif self.driver is not None:
            try:
                self.driver.current_url  # noqa: B018 - a round trip to the browser
            except WebDriverException:
                self.quit()
        if self.driver is None:
            self.driver = chrome(performance_log=True)
        return self.driver

    def quit(self):
        if self._starting is not None:
            starting, self._starting = self._starting, None
            self.driver = starting.result()
        if self.driver is not None:
            try:
                self.driver.quit()
            finally:
                self.driver = None


@pytest.fixture(scope="package")
def chromium():
    browser = _Browser()
    yield browser
    browser.quit()


@pytest.fixture
def site(chromium, stack, screenshots) -> Site:
    """The site in the browser, for a new anonymous visitor."""
    driver = chromium.get()
    site = Site(driver, stack.web_url, screenshots)
    _dismiss_alerts(driver)
    site.forget_visitor()
    site.forget_responses()
    yield site
    _dismiss_alerts(driver)  # an alert left open would break the next test's first step


def _dismiss_alerts(driver):
    try:
        driver.switch_to.alert.dismiss()
    except NoAlertPresentException:
        pass


@pytest.fixture
def logged_in(site, account) -> Account:
    """`account`, logged in (by its cookie: the tests of logging in use the form)."""
    site.use_session(settings.AUTH_COOKIE_NAME, account.token)
    return account


# --- evidence when a test fails -------------------------------------------------------------

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    site = item.funcargs.get("site") if hasattr(item, "funcargs") else None
    if report.failed and report.when in ("setup", "call") and isinstance(site, Site):
        try:
            saved = site._screenshots.save_failure(site.driver, item.nodeid)
            responses = "\n".join(f"  {r.status} {r.url} served by {r.served_by}, "
                                  f"X-Cache {r.cache}" for r in site.responses[-8:])
            report.sections.append(("browser", f"page: {site.driver.current_url}\n"
                                    f"saved: {', '.join(str(path) for path in saved)}\n"
                                    f"last page loads:\n{responses}"))
        except Exception as error:  # the browser itself may be what failed
            report.sections.append(("browser", f"could not save the page: {error!r}"))
    return report
