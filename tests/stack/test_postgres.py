"""`--db postgres`: a throwaway PostgreSQL cluster under the run directory, migrated and seeded
before the entity tier starts, and deleted by `down`."""
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from infra.postgres import bin_dir
from infra.processes import port_is_free
from tests.stack.stacks import small_config, start


@pytest.fixture
def traversable_run_dir():
    """A run directory the postgres user may enter (pytest's own tmp_path is private to
    root, and initdb runs as postgres)."""
    folder = Path(tempfile.mkdtemp(prefix="lab-stack-postgres-"))
    folder.chmod(0o755)
    try:
        yield folder / "state"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(bin_dir() is None and shutil.which("apt-get") is None,
                    reason="PostgreSQL is not installed and cannot be")
def test_a_postgres_stack_runs_on_a_throwaway_cluster_that_down_removes(stack_home,
                                                                         traversable_run_dir):
    config = small_config(stack_home, traversable_run_dir, db="postgres")
    stack = start(config)
    try:
        status = {process.name: process for process in stack.status()}
        assert status["postgres"].healthy and status["postgres"].health == \
            "accepting connections"
        assert status["postgres"].ports == str(config.postgres_port)
        assert (config.run_dir / "postgres" / "PG_VERSION").exists()
        # the entity tier's health check queries the database; the experience API needs data
        assert status["entity1"].healthy
        home = httpx.get(stack.experience_url + "/exp/v1/home", timeout=10)
        assert home.status_code == 200 and home.json()["data"]["newest"]
    finally:
        stack.down()
    assert not (config.run_dir / "postgres").exists()
    assert port_is_free(config.postgres_port)
