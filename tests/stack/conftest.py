"""Stack tests start real processes (redis-server, gunicorn, HAProxy) on this machine.

Every stack here is small (one or two instances per tier, one worker each), runs on a tiny
SQLite database seeded once per session, keeps its state in a temporary run directory and its
secrets in a temporary secrets directory, and listens on ports moved by an offset at which
every port is free, so these tests run beside a `make up` stack and beside each other. Every
stack a test starts is stopped by the test (fixtures stop it in `finally`)."""
import pytest

from tests.stack.stacks import small_config as make_small_config
from tests.stack.stacks import start


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/stack/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def stack_home(tmp_path_factory):
    """A session-wide folder: the tiny database (seeded by the first stack) and the secrets."""
    return tmp_path_factory.mktemp("stack-home")


@pytest.fixture
def small_config(stack_home, tmp_path):
    """Makes a small stack's configuration in this test's own run directory."""
    return lambda **overrides: make_small_config(stack_home, tmp_path / "state", **overrides)


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory, stack_home):
    """One stack shared by a module's tests: two web instances (to see load balancing), one
    experience and one entity instance."""
    config = make_small_config(stack_home, tmp_path_factory.mktemp("shared") / "state", web=2)
    stack = start(config)
    try:
        yield stack
    finally:
        stack.down()
