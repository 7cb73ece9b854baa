"""Stack tests start real processes (redis-server, gunicorn, HAProxy) on this machine.

Every stack here is small (one or two instances per tier, one worker each), runs on a tiny
SQLite database seeded once per session, keeps its state in a temporary run directory and its
secrets in a temporary secrets directory, and listens on ports moved by an offset at which
every port is free, so these tests run beside a `make up` stack and beside each other. Every
stack a test starts is stopped by the test (fixtures stop it in `finally`)."""
import random

import pytest

from infra import Stack, StackConfig, StackError
from infra.processes import port_is_free

# Offsets stay below 24000 so that no port of a stack is in the kernel's ephemeral range.
OFFSETS = range(10000, 24001, 250)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/stack/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def stack_home(tmp_path_factory):
    """A session-wide folder: the tiny database (seeded by the first stack) and the secrets."""
    home = tmp_path_factory.mktemp("stack-home")
    return home


def free_offset(config: StackConfig) -> int:
    """A random offset at which all of the stack's ports are free (random, so that concurrent
    test sessions rarely pick the same one)."""
    for offset in random.sample(list(OFFSETS), len(OFFSETS)):
        moved = config.replace(port_offset=offset)
        if all(port_is_free(port) for port in moved.tcp_ports()) and port_is_free(
                moved.log_receiver_port, udp=True):
            return offset
    raise StackError("no free port offset")


@pytest.fixture
def small_config(stack_home, tmp_path):
    """A function making a small stack's configuration in this test's own run directory."""

    def make(**overrides) -> StackConfig:
        settings = dict(web=1, experience=1, entity=1, workers=1, threads=4,
                        run_dir=tmp_path / "state", sqlite_path=stack_home / "tiny.sqlite3",
                        secrets_dir=stack_home / "secrets", seed_users=10, seed_listings=50,
                        extra_env={"LAB_FAST_HASHER": "1"}, startup_timeout=60)
        settings.update(overrides)
        config = StackConfig(**settings)
        return config.replace(port_offset=free_offset(config))

    return make


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory, stack_home):
    """One stack shared by a module's tests: two web instances (to see load balancing), one
    experience and one entity instance."""
    config = StackConfig(web=2, experience=1, entity=1, workers=1, threads=4,
                         run_dir=tmp_path_factory.mktemp("shared") / "state",
                         sqlite_path=stack_home / "tiny.sqlite3",
                         secrets_dir=stack_home / "secrets", seed_users=10, seed_listings=50,
                         extra_env={"LAB_FAST_HASHER": "1"}, startup_timeout=60)
    config = config.replace(port_offset=free_offset(config))
    with Stack(config).running() as stack:
        yield stack
