"""What only the real processes can show, on one small stack (two web instances, one of each
other tier, its own ports, run directory, database and secrets): the entity tier behind HAProxy,
HAProxy's stats page, Redis, cookies, CSRF, authenticators, body limits, escaping, SQL probes and
the log-in rate limit, all through the load balancer (lab/security.py does the probing; the
notebook shows the same rows)."""
import pytest

from lab import security
from tests.stack.stacks import small_config, start

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("security-stack")
    running = start(small_config(home, home / "state", web=2), progress=None)
    try:
        yield running
    finally:
        running.down()


@pytest.fixture(scope="module")
def site(stack):
    site = security._Site(stack)
    yield site
    site.close()


def failed(rows):
    return [f"{row.check}: expected {row.expected}, got {row.observed}"
            for row in rows if not row.passed]


@pytest.mark.parametrize("probe", [
    security.entity_needs_the_credential, security.entity_not_reachable_publicly,
    security.stats_page_needs_a_password, security.redis_is_private,
    security.cookies_are_protected, security.csrf_refused_through_the_load_balancer,
    security.authenticators_end_at_log_out, security.bodies_are_limited,
    security.user_input_is_escaped, security.sql_probes_change_nothing,
], ids=lambda probe: probe.__name__)
def test_the_stack_passes(site, probe):
    rows = probe(site)
    assert rows and not failed(rows), failed(rows)


def test_log_ins_to_the_experience_api_are_rate_limited_but_not_the_web_tiers_calls(site):
    # before the site's own limit: it logs in through the site once its address is limited
    limited, web_login = security.api_login_is_rate_limited(site, attempts=40)
    assert limited.passed, limited.observed
    assert web_login.passed, web_login.observed


def test_log_ins_to_the_site_are_rate_limited(site):
    # last in the module: the limit shuts 127.0.0.1 out of /login for a few seconds
    (row,) = security.login_is_rate_limited(site, attempts=40)
    assert row.passed, row.observed
