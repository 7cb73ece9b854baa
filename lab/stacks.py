"""The stacks a lab run starts: each experiment gets its own stack in its topic folder, on a
fresh copy of one seeded database made once per run, so experiments neither see each other's
writes nor pay for seeding again, and the developer's own database is never touched."""
import shutil
import sqlite3
import subprocess
import sys
from contextlib import contextmanager

from infra import Stack, StackConfig, free_port_offset
from infra.config import APP_DIR, REPO_DIR
from infra.stack import PREPARE_DATABASE


def pristine_database(run, users=200, listings=5000, seed=42):
    """The run's seeded SQLite database, made on first use."""
    path = run.topic("db") / f"seed-{users}-{listings}-{seed}.sqlite3"
    if not path.exists():
        env = {"PYTHONPATH": f"{APP_DIR}:{REPO_DIR}", "DJANGO_SETTINGS_MODULE":
               "marketplace.settings", "LAB_TIER": "entity", "LAB_SQLITE_PATH": str(path),
               "LAB_SECRETS_DIR": str(run.topic("secrets")), "PATH": "/usr/bin:/bin"}
        run.run("db", [sys.executable, PREPARE_DATABASE, "--users", users, "--listings", listings,
                       "--seed", seed], "migrate and seed the run's database", env=env,
                log_name=path.stem)
        with sqlite3.connect(path) as connection:  # fold the WAL into the file before copying
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def config_for(run, name, **options):
    """A StackConfig for experiment `name`: its own folder and database copy, the standard
    ports when they are free (so the write-up shows the ports a user sees), else moved."""
    folder = run.topic(name)
    seed = {key: options.pop(key) for key in ("seed_users", "seed_listings") if key in options}
    database = folder / "marketplace.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    shutil.copy2(pristine_database(run, seed.get("seed_users", 200),
                                   seed.get("seed_listings", 5000)), database)
    config = StackConfig(run_dir=folder / "stack", sqlite_path=database,
                         secrets_dir=run.topic("secrets"), **seed, **options)
    if not all(_free(port) for port in config.tcp_ports()):
        config = config.replace(port_offset=free_port_offset(config))
    return config


def _free(port):
    from infra.processes import port_is_free

    return port_is_free(port)


@contextmanager
def lab_stack(run, name, progress=print, **options):
    """`with lab_stack(run, "caching", cache="ttl") as stack:` starts a stack for one
    experiment, records the equivalent command line, and always stops it."""
    config = config_for(run, name, **options)
    argv = ["python", "-m", "infra", "up", "--web", config.web, "--exp", config.experience,
            "--entity", config.entity, "--workers", config.workers, "--threads", config.threads,
            "--db", config.db,
            "--cache", config.cache]
    run.record_command(name, argv, f"start the stack for {name} (from the lab's Python API)")
    with Stack(config, progress=progress).running() as stack:
        yield stack


def cache_counters(stack, mode="invalidate"):
    """The page cache's hit/miss/bypass/stale totals across every web instance (kept in the
    stack's Redis by the web tier's own code, which lives in app/)."""
    import sys

    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    from web.pagecache import stats

    return stats.read_totals(stack.redis_url, mode)
