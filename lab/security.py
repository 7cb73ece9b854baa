"""Security probes of the marketplace: a scan of the repository for committed secrets, and the
checks that need the real stack (HAProxy, Redis, cookies through the load balancer). Each check
is one row: what was tried, what a safe site answers, what this one answered, passed or not.

    from lab import security
    rows = security.repository_secrets()                 # no stack needed
    rows += security.stack_checks(stack)                 # a running infra.Stack

The checks that need no processes (every form's CSRF token, escaping on every page, expiry of
authenticators...) are pytest tests in tests/security/; the lab's reliability notebook runs
them and tabulates them beside these rows. Every request goes to 127.0.0.1 only, and every
loop here is bounded."""
from __future__ import annotations

import json
import math
import re
import secrets as secrets_module
import socket
import sqlite3
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

REPO_DIR = Path(__file__).resolve().parent.parent
SEED_PASSWORD = "marketplace-demo"  # app/entity/seed.py: public, for people trying the site

# SQL-injection probes: classic tautologies, stacked statements, comments, quoting tricks.
SQL_PROBES = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE entity_listing; --",
    "\"; DELETE FROM entity_user; --",
    "1; UPDATE entity_listing SET price=0",
    "%' OR title LIKE '%",
    "') UNION SELECT username, password FROM entity_user --",
    "\\'; SELECT sqlite_version(); --",
]
# HTML/JS payloads: a tag, an attribute breakout, a javascript: URL.
XSS_PROBES = [
    "<script>alert('xss')</script>",
    "\"><img src=x onerror=alert(1)>",
    "javascript:alert(document.cookie)",
]


@dataclass
class Check:
    area: str
    check: str
    expected: str
    observed: str
    passed: bool

    def as_dict(self) -> dict:
        return asdict(self)


# --- the repository ---------------------------------------------------------------------------

# Shapes of real credentials (https://docs.github.com/en/code-security/secret-scanning):
# private keys, cloud and GitHub tokens, and a key-like name assigned a long random literal.
CREDENTIAL_SHAPES = [
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("AWS access key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("Slack token", re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}")),
    ("assigned secret", re.compile(
        r"(?i)(secret|passw(or)?d|token|api[_-]?key|requirepass)[\w\"']*(\s*[=:]\s*|\s+)[\"']?"
        r"([A-Za-z0-9+/_=-]{20,})")),
]
# Files that hold recorded measurements or binary data, not configuration or code.
NOT_SCANNED = re.compile(r"(^|/)(samples|fixtures)/|\.(png|jpg|pdf|ipynb|sqlite3|csv)$")
# Fake credentials on purpose: another scanner's examples of what it must flag.
ALLOWED = {"tests/deploy/test_cloud_init.py": "the deployment secret scan's own test examples"}


def entropy(text: str) -> float:
    """Shannon entropy in bits per character: random tokens score above 4, words below 3.5."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def tracked_files(repo: Path = REPO_DIR) -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True,
                           check=True).stdout.decode().split("\0")
    return [repo / name for name in names if name and not NOT_SCANNED.search(name)]


def find_credentials(text: str) -> list[str]:
    """What in `text` looks like a committed credential (each hit names its kind)."""
    hits = []
    for kind, pattern in CREDENTIAL_SHAPES:
        for match in pattern.finditer(text):
            value = match.group(match.lastindex or 0)
            if kind != "assigned secret" or entropy(value) > 4.0:
                hits.append(f"{kind}: {value[:12]}...")
    return hits


def repository_secrets(repo: Path = REPO_DIR, secrets_dirs=()) -> list[Check]:
    """No credential in any tracked file; the generated ones (in `secrets_dirs`, default the
    repository's .secrets/) appear in none of them; .secrets/ is ignored by git; the settings
    read the secret key from the environment or generate it."""
    files = tracked_files(repo)
    texts = {}
    for path in files:
        try:
            texts[path] = path.read_text(errors="replace")
        except (IsADirectoryError, FileNotFoundError):
            continue
    shaped = {str(path.relative_to(repo)): hits for path, text in texts.items()
              if (hits := find_credentials(text))}
    allowed = sorted(name for name in shaped if name in ALLOWED)
    shaped = {name: hits for name, hits in shaped.items() if name not in ALLOWED}
    rows = [Check("secrets", "no credential-shaped value in any tracked file",
                  "0 files", f"{len(shaped)} files of {len(texts)}"
                  + (f": {json.dumps(shaped)[:300]}" if shaped else "")
                  + (f" (allowed, fake on purpose: {', '.join(allowed)})" if allowed else ""),
                  not shaped)]

    generated = []
    for folder in [*(Path(d) for d in secrets_dirs), repo / ".secrets"]:
        if folder.is_dir():
            generated += [path.read_text().strip() for path in folder.iterdir() if path.is_file()]
    generated = [value for value in generated if len(value) >= 16]
    leaked = sorted({str(path.relative_to(repo)) for path, text in texts.items()
                     for value in generated if value in text})
    rows.append(Check("secrets", "no generated secret (.secrets/) in any tracked file",
                      "0 files", f"{len(leaked)} files ({len(generated)} secrets compared)"
                      + (f": {leaked}" if leaked else ""), not leaked))

    ignored = subprocess.run(["git", "check-ignore", "-q", ".secrets/secret_key"], cwd=repo)
    rows.append(Check("secrets", ".secrets/ is ignored by git", "ignored",
                      "ignored" if ignored.returncode == 0 else "NOT ignored",
                      ignored.returncode == 0))
    settings_text = (repo / "app" / "marketplace" / "settings.py").read_text()
    from_env = ('SECRET_KEY = generated_secret("SECRET_KEY")' in settings_text
                and "django-insecure" not in settings_text)
    rows.append(Check("secrets", "SECRET_KEY comes from the environment or is generated",
                      "generated_secret(...)", "generated_secret(...)" if from_env
                      else "a literal in settings.py", from_env))
    return rows


# --- the running stack ------------------------------------------------------------------------

class _Site:
    """What the probes need of a running infra.Stack."""

    def __init__(self, stack):
        self.stack = stack
        self.token = stack.service_token
        self.http = httpx.Client(timeout=10.0, follow_redirects=False)

    def close(self):
        self.http.close()

    def csrf_browser(self):
        """A browser with the CSRF cookie and the log-in form's token."""
        browser = httpx.Client(base_url=self.stack.web_url, timeout=10.0)
        page = browser.get("/login")
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        return browser, (match.group(1) if match else ""), page

    def seeded_username(self):
        reply = self.http.get(f"{self.stack.entity_url}/entity/v1/users",
                              params={"limit": 1}, headers={"X-Service-Token": self.token})
        return reply.json()["data"]["items"][0]["username"]


def stack_checks(stack, *, rate_limit_attempts: int = 40) -> list[Check]:
    """Every stack-level check on a running stack (the log-in rate limits last: they shut the
    door on 127.0.0.1 for the next few seconds; the experience API's first, since its check
    then logs in through the site)."""
    site = _Site(stack)
    try:
        rows = []
        for probe in (entity_needs_the_credential, entity_not_reachable_publicly,
                      stats_page_needs_a_password, redis_is_private, cookies_are_protected,
                      csrf_refused_through_the_load_balancer, authenticators_end_at_log_out,
                      bodies_are_limited, user_input_is_escaped, sql_probes_change_nothing,
                      api_login_is_rate_limited, login_is_rate_limited):
            limited = probe in (login_is_rate_limited, api_login_is_rate_limited)
            kwargs = {"attempts": rate_limit_attempts} if limited else {}
            try:
                rows += probe(site, **kwargs)
            except Exception as error:  # noqa: BLE001 - a probe that breaks is a failed check
                rows.append(Check(probe.__name__, probe.__doc__.splitlines()[0], "answers",
                                  f"the probe failed: {type(error).__name__}: {error}", False))
        return rows
    finally:
        site.close()


def _status(response) -> str:
    return str(response.status_code)


def entity_needs_the_credential(site) -> list[Check]:
    """The entity API answers only callers holding the service credential."""
    stack, rows = site.stack, []
    url = f"{stack.entity_url}/entity/v1/listings"
    direct = f"{stack.instances('entity')[0].url}/entity/v1/listings"
    for where, target in (("through HAProxy", url), ("straight to entity1", direct)):
        for label, headers in (("no credential", {}),
                               ("a wrong credential", {"X-Service-Token": "guess"}),
                               ("the credential with a character more",
                                {"X-Service-Token": f"{site.token}x"})):
            response = site.http.get(target, headers=headers)
            rows.append(Check("entity API", f"{label}, {where}", "401", _status(response),
                              response.status_code == 401))
    response = site.http.get(url, headers={"X-Service-Token": site.token})
    rows.append(Check("entity API", "the credential, through HAProxy", "200", _status(response),
                      response.status_code == 200))
    return rows


ENTITY_PATH_TRICKS = ["/entity/v1/listings", "/Entity/v1/listings", "//entity/v1/listings",
                      "/%65ntity/v1/listings", "/./entity/v1/listings", "/x/../entity/v1/listings"]


def entity_not_reachable_publicly(site) -> list[Check]:
    """The public frontends never route to the entity API, even with the credential."""
    rows = []
    for name, base in (("web", site.stack.web_url), ("experience", site.stack.experience_url)):
        answers = {}
        for path in ENTITY_PATH_TRICKS:
            # the raw path is sent as written (httpx would normalize dot segments)
            request = site.http.build_request("GET", base + "/", headers={
                "X-Service-Token": site.token})
            request.url = request.url.copy_with(raw_path=path.encode())
            response = site.http.send(request)
            leaked = response.status_code < 300 and '"items"' in response.text
            answers[path] = (response.status_code, leaked)
        refused = all(400 <= code < 500 and not leaked for code, leaked in answers.values())
        rows.append(Check("entity API", f"entity paths on the public {name} frontend "
                          f"({len(answers)} spellings, with the credential)", "4xx (not 5xx), no data",
                          ", ".join(f"{path} {code}" for path, (code, _) in answers.items()),
                          refused))
    return rows


def stats_page_needs_a_password(site) -> list[Check]:
    """HAProxy's stats page asks for its password and listens on loopback only."""
    stack, rows = site.stack, []
    user, password = stack.stats_auth
    for label, auth, expected in (("no password", None, 401),
                                  ("a wrong password", (user, "guess"), 401),
                                  ("the password", (user, password), 200)):
        response = site.http.get(stack.stats_url + "/", auth=auth)
        rows.append(Check("HAProxy stats", label, str(expected), _status(response),
                          response.status_code == expected))
    addresses = _listen_addresses(stack.pid("haproxy"), stack.config.stats_port)
    rows.append(Check("HAProxy stats", "listens on loopback only", "127.0.0.1",
                      ", ".join(sorted(addresses)) or "not found",
                      bool(addresses) and addresses <= {"127.0.0.1"}))
    return rows


def _listen_addresses(pid, port) -> set[str]:
    import psutil

    from infra.processes import process_tree

    found = set()
    for process in process_tree(pid) if pid else []:
        try:
            connections = process.net_connections(kind="inet")
        except psutil.Error:
            continue
        for connection in connections:
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
                found.add(connection.laddr.ip)
    return found


def redis_is_private(site) -> list[Check]:
    """Redis answers nothing without its password and listens on loopback only."""
    import redis

    stack, rows = site.stack, []
    port = stack.config.redis_port
    # the protocol by hand: no client library quietly authenticating or negotiating first
    with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
        connection.sendall(b"PING\r\n")
        observed = connection.recv(200).decode(errors="replace").strip()
    passed = observed.startswith("-NOAUTH")
    rows.append(Check("Redis", "a command without the password", "NOAUTH", observed, passed))
    wrong = redis.Redis(host="127.0.0.1", port=port, password="guess", socket_timeout=2)
    try:
        wrong.ping()
        observed, passed = "PONG", False
    except redis.RedisError as error:
        observed, passed = f"refused ({type(error).__name__})", True
    finally:
        wrong.close()
    rows.append(Check("Redis", "a wrong password", "refused", observed, passed))
    addresses = _listen_addresses(stack.pid("redis"), port)
    rows.append(Check("Redis", "listens on loopback only", "127.0.0.1",
                      ", ".join(sorted(addresses)) or "not found",
                      bool(addresses) and addresses <= {"127.0.0.1"}))
    return rows


def _cookie_flags(response) -> dict[str, str]:
    """Set-Cookie headers of a response: name -> the attributes as written."""
    cookies = {}
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        cookies[name.strip()] = rest
    return cookies


def cookies_are_protected(site) -> list[Check]:
    """Every cookie the site sets (CSRF, authenticator, messages) is HttpOnly and SameSite."""
    browser, csrf, page = site.csrf_browser()
    try:
        seen = _cookie_flags(page)
        response = browser.post("/login", data={"username": site.seeded_username(),
                                                "password": SEED_PASSWORD,
                                                "csrfmiddlewaretoken": csrf},
                                headers={"Referer": site.stack.web_url + "/login"})
        seen.update(_cookie_flags(response))
    finally:
        browser.close()
    rows = []
    for name in ("csrftoken", "auth", "messages"):
        attributes = seen.get(name)
        if attributes is None:
            rows.append(Check("cookies", f"{name}: HttpOnly, SameSite=Lax", "set with both",
                              "not set by the log-in", False))
            continue
        lowered = attributes.lower()
        good = "httponly" in lowered and "samesite=lax" in lowered
        rows.append(Check("cookies", f"{name}: HttpOnly, SameSite=Lax", "both",
                          ", ".join(flag for flag in ("HttpOnly", "SameSite=Lax", "Secure")
                                    if flag.lower() in lowered), good))
    rows.append(Check("cookies", "the log-in answered by a redirect that sets the cookie",
                      "302", _status(response), response.status_code == 302))
    return rows


def csrf_refused_through_the_load_balancer(site) -> list[Check]:
    """A form posted without its CSRF token is refused (403), through HAProxy."""
    rows = []
    for path in ("/login", "/signup", "/logout", "/listings/new"):
        response = site.http.post(site.stack.web_url + path, data={"username": "x"})
        rows.append(Check("CSRF", f"POST {path} without the token", "403", _status(response),
                          response.status_code == 403))
    return rows


def authenticators_end_at_log_out(site) -> list[Check]:
    """An authenticator stops working at log out; forged and tampered ones never work."""
    stack, rows = site.stack, []
    browser, csrf, _ = site.csrf_browser()
    try:
        browser.post("/login", data={"username": site.seeded_username(),
                                     "password": SEED_PASSWORD, "csrfmiddlewaretoken": csrf})
        token = browser.cookies.get("auth")
        me = f"{stack.experience_url}/exp/v1/me"

        def status_with(bearer):
            return site.http.get(me, headers={"Authorization": f"Bearer {bearer}"}).status_code

        rows.append(Check("authenticators", "the cookie's token before log out", "200",
                          str(status_with(token)), status_with(token) == 200))
        tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
        for label, bearer in (("a forged token", secrets_module.token_urlsafe(32)),
                              ("the token with one character changed", tampered),
                              ("the token truncated", token[:-4])):
            code = status_with(bearer)
            rows.append(Check("authenticators", label, "401", str(code), code == 401))
        page = browser.get("/")
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        browser.post("/logout", data={"csrfmiddlewaretoken": match.group(1) if match else csrf})
        code = status_with(token)
        rows.append(Check("authenticators", "the same token after log out", "401", str(code),
                          code == 401))
    finally:
        browser.close()
    return rows


def bodies_are_limited(site) -> list[Check]:
    """Request bodies over 64 KiB are refused before they are parsed, on every tier."""
    stack, rows = site.stack, []
    big = json.dumps({"username": "x" * (100 * 1024), "password": "y"})
    for label, url, headers, expected in (
            ("experience API", f"{stack.experience_url}/exp/v1/login", {}, 413),
            ("entity API", f"{stack.entity_url}/entity/v1/authenticators",
             {"X-Service-Token": site.token}, 413)):
        response = site.http.post(url, content=big, headers={
            **headers, "Content-Type": "application/json"})
        rows.append(Check("body size", f"100 KiB JSON to the {label}", str(expected),
                          _status(response), response.status_code == expected))
    browser, csrf, _ = site.csrf_browser()
    try:
        response = browser.post("/signup", data={"username": "x" * (100 * 1024),
                                                 "csrfmiddlewaretoken": csrf})
    finally:
        browser.close()
    rows.append(Check("body size", "a 100 KiB form to the web tier", "400 or 413",
                      _status(response), response.status_code in (400, 413)))
    health = site.http.get(stack.web_url + "/healthz")
    rows.append(Check("body size", "the site still answers afterwards", "200", _status(health),
                      health.status_code == 200))
    return rows


def _session(site):
    """A token of a seeded user, from the experience API."""
    reply = site.http.post(f"{site.stack.experience_url}/exp/v1/login",
                           json={"username": site.seeded_username(), "password": SEED_PASSWORD})
    return reply.json()["data"]["token"]


SCRIPT_URL = re.compile(r"""(?i)\b(href|src|action|formaction)\s*=\s*["']?\s*javascript:""")


def unescaped(page: str, payload: str) -> str:
    """How `payload` reached `page` unsafely ("" when it did not): as markup (it contains
    <, > or a quote and appears as written), or as a javascript: URL in a link."""
    if any(character in payload for character in "<>\"'") and payload in page:
        return "RAW markup"
    if SCRIPT_URL.search(page):
        return "a javascript: link"
    return ""


def user_input_is_escaped(site) -> list[Check]:
    """HTML/JS in listings and in the search box reaches the page escaped."""
    stack, rows = site.stack, []
    token = _session(site)
    for payload in XSS_PROBES:
        created = site.http.post(f"{stack.experience_url}/exp/v1/listings",
                                 headers={"Authorization": f"Bearer {token}"},
                                 json={"title": f"Lamp {payload}", "price": "5",
                                       "description": f"Bright {payload}"})
        listing_id = created.json()["data"]["listing"]["id"]
        pages = {"listing page": site.http.get(f"{stack.web_url}/listings/{listing_id}"),
                 "search page": site.http.get(f"{stack.web_url}/search", params={"q": payload})}
        for name, page in pages.items():
            unsafe = unescaped(page.text, payload)
            rows.append(Check("escaping", f"{payload[:28]} on the {name}",
                              "escaped", unsafe or f"escaped ({page.status_code})",
                              page.status_code == 200 and not unsafe))
    return rows


def _table_counts(path) -> dict[str, int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        names = [row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'entity_%'")]
        return {name: connection.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
                for name in names}


def sql_probes_change_nothing(site) -> list[Check]:
    """SQL-injection probes in search, log-in and sign-up change nothing and find nothing."""
    stack, rows = site.stack, []
    database = stack.config.sqlite_path if stack.config.db == "sqlite" else None
    before = _table_counts(database) if database else None
    found = []
    for probe in SQL_PROBES:
        web = site.http.get(f"{stack.web_url}/search", params={"q": probe})
        api = site.http.get(f"{stack.experience_url}/exp/v1/search", params={"q": probe})
        login = site.http.post(f"{stack.experience_url}/exp/v1/login",
                               json={"username": probe, "password": probe})
        found.append((web.status_code, api.status_code, api.json()["data"]["count"],
                      login.status_code))
    statuses_ok = all(web == 200 and api == 200 and login == 401
                      for web, api, _, login in found)
    rows.append(Check("SQL injection", f"{len(SQL_PROBES)} probes in web and API search and the "
                      "log-in", "200/200/401, no results", "counts "
                      + "/".join(str(count) for _, _, count, _ in found),
                      statuses_ok and all(count == 0 for _, _, count, _ in found)))
    if database:
        after = _table_counts(database)
        rows.append(Check("SQL injection", "every table's row count after the probes",
                          "unchanged", "unchanged" if after == before else f"{before} -> {after}",
                          after == before))
    return rows


def _attempts_until_429(send, attempts):
    """Sends up to `attempts` log-in POSTs; (attempt that got the first 429 or None, that
    answer or the last one, every status)."""
    statuses, response = [], None
    for number in range(1, attempts + 1):
        response = send()
        statuses.append(response.status_code)
        if response.status_code == 429:
            return number, response, statuses
    return None, response, statuses


def login_is_rate_limited(site, attempts: int = 40) -> list[Check]:
    """Log-in attempts to the site from one address are refused (429) past HAProxy's limit."""
    url = site.stack.web_url + "/login"
    first, response, statuses = _attempts_until_429(
        lambda: site.http.post(url, data={"username": "someone", "password": "guess"}),
        attempts)
    retry_after = response.headers.get("Retry-After") if first else None
    return [Check("rate limit", f"up to {attempts} log-in POSTs to the web tier in a row",
                  "429 with Retry-After",
                  f"429 at attempt {first}, Retry-After {retry_after}" if first
                  else f"no 429 in {len(statuses)}", bool(first and retry_after))]


def api_login_is_rate_limited(site, attempts: int = 40) -> list[Check]:
    """Log-in attempts to the experience API (public on its own port) are limited too, but
    not the web tier's own log-in calls, which come from the same address."""
    url = f"{site.stack.experience_url}/exp/v1/login"
    first, response, statuses = _attempts_until_429(
        lambda: site.http.post(url, json={"username": "someone", "password": "guess"}),
        attempts)
    code = _error_code(response) if first else None
    rows = [Check("rate limit", f"up to {attempts} log-in POSTs to the experience API "
                  "(/exp/v1/login, public on its own port)", "429 in the API's error shape",
                  f"429 ({code}) at attempt {first}" if first else
                  f"no 429 in {len(statuses)} ({Counter(statuses).most_common(1)[0][0]} each)",
                  bool(first and code))]
    # 127.0.0.1 is now over the experience frontend's limit, and the web instances call it
    # from 127.0.0.1: a visitor's log-in through the site must still work.
    browser, csrf, _ = site.csrf_browser()
    try:
        login = browser.post("/login", data={"username": site.seeded_username(),
                                              "password": SEED_PASSWORD,
                                              "csrfmiddlewaretoken": csrf})
        logged_in = login.status_code == 302 and bool(browser.cookies.get("auth"))
    finally:
        browser.close()
    rows.append(Check("rate limit", "a log-in through the site while its address is over the "
                      "experience API's limit (the web tier's calls are exempt)",
                      "302 with the auth cookie",
                      f"{login.status_code}{' with' if logged_in else ' without'} the cookie",
                      logged_in))
    return rows


def _error_code(response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


# --- the in-process suite and one table of everything ----------------------------------------

def run_suite(run, topic: str = "reliability", timeout: int = 900):
    """tests/security without the real-stack module (the notebook probes its own stack with
    stack_checks): (cases frame, counts) from lab.testruns."""
    from .testruns import run_pytest

    cases, counts, _ = run_pytest(run, topic, ["tests/security"], "security",
                                  extra=("-m", "not stack"), timeout=timeout)
    return cases, counts


# The in-process tests, grouped into the rows of the security table (module -> area, check).
SUITE_ROWS = {
    "test_entity_credential": ("entity API", "every entity operation refuses callers without "
                               "the service credential; the web tier is not given it"),
    "test_authenticators": ("authenticators", "expire, are revoked at log out; forged, tampered "
                            "and digest tokens refused"),
    "test_csrf": ("CSRF", "every web address refuses a POST without its token; every posting "
                  "form carries one"),
    "test_cookies_and_headers": ("cookies", "HttpOnly, SameSite=Lax, Secure behind TLS; "
                                 "nosniff, DENY framing, no debug pages"),
    "test_secrets": ("secrets", "secrets from the environment or generated (0600), the scan "
                     "catches credentials"),
    "test_escaping": ("escaping", "HTML/JS in every field escaped on every page and form"),
    "test_sql_injection": ("SQL injection", "probes in search, log-in, sign-up and forms change "
                           "nothing; stored as text"),
    "test_body_limits": ("body size", "every JSON operation 413, every form 400 over 64 KiB"),
}


def suite_rows(cases) -> list[Check]:
    """The in-process suite as table rows: one per test module, passed when all its tests did."""
    rows = []
    for module, (area, check) in SUITE_ROWS.items():
        mine = cases[cases["module"].str.endswith(module)]
        if not len(mine):
            continue
        passed = int((mine["outcome"] == "passed").sum())
        failed = mine[mine["outcome"].isin(["failed", "error"])]
        observed = f"{passed}/{len(mine)} tests passed" + (
            f"; failed: {', '.join(failed['test'].head(3))}" if len(failed) else "")
        rows.append(Check(area, f"{check} (in-process tests)", "all pass", observed,
                          len(failed) == 0))
    return rows
