"""The fuzzing harness: schemathesis reads the entity and experience OpenAPI documents and calls
the real Django application in this process (its WSGI handler; the experience tier reaches the
entity tier through tests.inprocess), on pytest-django's throwaway test database.

What counts as a failure (the issue's targets): any 5xx, a status code the document does not
list, a response whose content type, headers or body do not match the document, an operation
that answers without its credential, and, in the stateful runs, a deleted resource that is
still there. Left out, on purpose:

- positive_data_acceptance: the tiers enforce rules an OpenAPI schema cannot express (password
  strength, e-mail syntax, an existing seller), so a schema-valid request may rightly get a
  422; the document lists 422 for every operation.
- extra query parameters in negative cases: like every web site, the tiers ignore query
  parameters they do not know (the page cache depends on that for ?utm_source=...).

Generated ids are mostly random numbers that name nothing, so almost every call would be a 404.
The hooks below swap three of four generated ids in schema-valid calls for ids of objects that
exist (KNOWN, filled by the fixture of each test), and some credentials and sign-ups for ones
the tiers accept, so that the fuzzer also reaches the code behind the lookups and rules.
Every call is tallied (TALLY) for the lab's report."""
from __future__ import annotations

import os
import re
import secrets
from collections import Counter
from contextlib import contextmanager

import schemathesis
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

# Examples per operation; CI keeps the default small, the lab's campaign raises it.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
# Examples per property of the web forms and the page cache's keys (hypothesis): 150 unless
# told otherwise; the lab's campaign sets the same number as per operation.
PROPERTY_EXAMPLES = int(os.environ.get("FUZZ_PROPERTY_EXAMPLES", "150"))
# Steps per stateful run and runs per machine.
STATEFUL_STEPS = int(os.environ.get("FUZZ_STATEFUL_STEPS", "8"))
STATEFUL_RUNS = int(os.environ.get("FUZZ_STATEFUL_RUNS", str(max(5, EXAMPLES // 3))))
# CI is reproducible (derandomized); the lab's campaign explores new inputs every run.
RANDOM = os.environ.get("FUZZ_RANDOM", "") == "1"

PASSWORD = "a sturdy fuzzing passphrase 7"
FUZZER = "fuzzer"
# Credentials are fixed before the test database exists, because schemathesis prepares some
# cases (its coverage phase) while pytest collects; the fixture stores their digests.
BEARER = secrets.token_urlsafe(32)  # the fuzzer's own authenticator, sent by schemathesis
SPARE = secrets.token_urlsafe(32)  # what generated verify/revoke bodies are sometimes given

ID_NAMES = ("user_id", "seller_id", "listing_id", "authenticator_id")
KNOWN: dict[str, list[int]] = {name: [] for name in ID_NAMES}
TALLY: Counter = Counter()  # (tier, method, path template, mode, status) -> calls

application = get_wsgi_application()

SETTINGS = hypothesis_settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
    # function-scoped fixtures are meant: one database per operation, shared by its examples
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much, HealthCheck.data_too_large])
STATEFUL_SETTINGS = hypothesis_settings(
    SETTINGS, max_examples=STATEFUL_RUNS, stateful_step_count=STATEFUL_STEPS)


def _config(auth):
    return schemathesis.Config.from_dict({
        "generation": {"allow-extra-parameters": False},
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            # schemathesis's default list of refusals, plus 413: a body over the size limit
            # (64 KiB) is refused before it is parsed (docs/api.md)
            "negative_data_rejection": {"expected-statuses": [
                400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5XX"]},
        },
        "auth": {"openapi": auth},
    })


def load(tier):
    """The schema of one tier ("entity" or "experience"), with its credential configured."""
    if tier == "entity":
        return schemathesis.openapi.from_wsgi(
            "/entity/v1/openapi.json", application,
            config=_config({"ServiceCredential": {"api_key": settings.SERVICE_TOKEN}}))
    return schemathesis.openapi.from_wsgi(
        "/exp/v1/openapi.json", application,
        config=_config({"Authenticator": {"bearer": BEARER}}))


# --- steering generated values towards things that exist ----------------------------------

def _known_id(name, value):
    ids = KNOWN.get(name)
    if ids and isinstance(value, int) and not isinstance(value, bool) and value % 4:
        return ids[value % len(ids)]
    return value


def _steer_ids(values):
    if isinstance(values, dict):
        return {key: _known_id(key, value) for key, value in values.items()}
    return values


def _steer_body(body):
    if not isinstance(body, dict):
        return body
    if STEERING["ids"]:
        body = _steer_ids(body)
    token = body.get("token")
    if isinstance(token, str) and len(token) % 2 == 0:
        body["token"] = SPARE
    password = body.get("password")
    if not isinstance(password, str) or len(password) % 3 == 0:
        return body
    if set(body) <= {"username", "password"}:  # a log-in
        body.update(username=FUZZER, password=PASSWORD)
    elif "email" in body:  # a sign-up: a username, e-mail and password the tiers accept
        username = re.sub(r"[^A-Za-z0-9_.-]", "", str(body.get("username", "")))[:26]
        body.update(username=f"u{len(password)}{username}"[:30], password=PASSWORD,
                    email=f"{len(password)}@example.com")
        if "password_confirm" in body:
            body["password_confirm"] = PASSWORD
    return body


def _negative(case):
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_negative


STEERING = {"ids": True}


@contextmanager
def ids_from_links():
    """Stateful runs take their ids from earlier answers (the links): leave those alone."""
    STEERING["ids"] = False
    try:
        yield
    finally:
        STEERING["ids"] = True


@schemathesis.hook
def map_case(context, case):
    # Only schema-valid cases are steered: a negative case must keep the invalid value it
    # was generated to send, or schemathesis would judge the answer to a request not sent.
    if not _negative(case):
        if STEERING["ids"]:
            if isinstance(case.path_parameters, dict):
                case.path_parameters = _steer_ids(case.path_parameters)
            if isinstance(case.query, dict):
                case.query = _steer_ids(case.query)
        case.body = _steer_body(case.body)
    return case


@schemathesis.hook
def after_call(context, case, response):
    tier = "entity" if case.operation.path.startswith("/entity/") else "experience"
    mode = "negative" if _negative(case) else "positive"
    TALLY[(tier, case.method.upper(), case.operation.path, mode, response.status_code)] += 1
    _remember_owners(case, response)


# --- deletions that cascade -----------------------------------------------------------------
# Deleting a user deletes their listings and authenticators (on_delete=CASCADE). schemathesis's
# stateful check "a resource just created is there" knows only of deletions of the resource
# itself, so it would flag GET /authenticators/{id} after DELETE /users/{its user}. The owners
# of what each run creates are remembered, and such 404s are accepted.

OWNERS: dict[tuple[str, int], int] = {}  # ("listing" | "authenticator", id) -> user id
DELETED_USERS: set[int] = set()


def _remember_owners(case, response):
    path, method = case.operation.path, case.method.upper()
    if response.status_code not in (200, 201):
        return
    try:
        data = response.json().get("data") or {}
    except ValueError:
        return
    if method == "POST" and path == "/entity/v1/authenticators":
        OWNERS[("authenticator", data["authenticator"]["id"])] = data["user"]["id"]
    elif method == "POST" and path in ("/entity/v1/listings", "/exp/v1/listings"):
        listing = data.get("listing", data)
        OWNERS[("listing", listing["id"])] = listing["seller"]["id"]
    elif method == "DELETE" and path == "/entity/v1/users/{user_id}":
        DELETED_USERS.add(int(case.path_parameters["user_id"]))


def _owner_was_deleted(case):
    for kind in ("listing", "authenticator"):
        resource = (case.path_parameters or {}).get(f"{kind}_id")
        if resource is not None and OWNERS.get((kind, int(resource))) in DELETED_USERS:
            return True
    return False


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure but a 404 for something whose owner the same run deleted."""
    return not (type(failure).__name__ == "EnsureResourceAvailability"
                and response.status_code == 404 and _owner_was_deleted(case))


# --- the data each test starts with ---------------------------------------------------------

def make_world():
    """The fuzzer (with its two authenticators) and a few people, listings and authenticators
    the steered ids point at; returns the fuzzer. Needs the database."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from entity.models import Authenticator, Listing, User, digest

    def person(username):
        user = User(username=username, email=f"{username}@example.com",
                    display_name=username.title())
        user.set_password(PASSWORD)
        user.save()
        return user

    fuzzer = person(FUZZER)
    expires = timezone.now() + timedelta(hours=1)
    for token in (BEARER, SPARE):
        Authenticator.objects.create(user=fuzzer, token_digest=digest(token), expires_at=expires)
    people = [person(f"victim{number}") for number in range(1, 4)]
    listings = [Listing.objects.create(seller=seller, title=f"Thing {number}",
                                       description=f"Thing number {number}.",
                                       price=Decimal(number * 7) + Decimal("0.50"))
                for number, seller in enumerate(people * 2, start=1)]
    others = [Authenticator.issue(user)[0] for user in people]
    KNOWN.update(user_id=[user.pk for user in people], seller_id=[user.pk for user in people],
                 listing_id=[listing.pk for listing in listings],
                 authenticator_id=[item.pk for item in others])
    return fuzzer


def forget_world():
    for ids in KNOWN.values():
        ids.clear()


def restore_credentials():
    """The fuzzer logs itself out now and then (POST logout, revoke with SPARE): un-revoke, so
    the following examples still reach the code behind the credential check."""
    from entity.models import Authenticator, digest

    Authenticator.objects.filter(token_digest__in=[digest(BEARER), digest(SPARE)]).update(
        revoked_at=None)


def isolated_machine(schema):
    """The schema's state machine (links between operations inferred by schemathesis), each
    run of which starts from the same world: its writes are undone at the end (a savepoint in
    the test's transaction). Without that, a run hypothesis replays would meet the data of all
    the runs before it, and could not be replayed."""
    from django.db import transaction

    class Machine(schema.as_state_machine()):
        def setup(self):
            super().setup()
            OWNERS.clear()
            DELETED_USERS.clear()
            self._savepoint = transaction.atomic()
            self._savepoint.__enter__()

        def teardown(self):
            try:
                super().teardown()
            finally:
                transaction.set_rollback(True)
                self._savepoint.__exit__(None, None, None)

    return Machine
