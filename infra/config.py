"""What a stack is made of: how many instances per tier, which database and cache mode, and
which ports. One frozen value object, so the CLI, the Python API and the state file of a running
stack all describe a stack the same way, and a test can move every port at once (port_offset)
to run beside a `make up` stack without colliding with it."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
APP_DIR = REPO_DIR / "app"

TIERS = ("entity", "experience", "web")  # in start order: each tier calls the one before it
DATABASES = ("sqlite", "postgres")
CACHE_MODES = ("off", "ttl", "invalidate", "django")
# haproxy.cfg has one conditional server line per slot (see infra/haproxy/haproxy.cfg).
MAX_INSTANCES_PER_TIER = 8

# Base ports; every one of them moves by StackConfig.port_offset.
FRONTEND_PORTS = {"web": 8000, "experience": 8001, "entity": 8002}
STATS_PORT = 8404
LOG_RECEIVER_PORT = 8514  # UDP: HAProxy sends its access log here (syslog)
REDIS_PORT = 6390
POSTGRES_PORT = 5433
INSTANCE_PORT_BASE = {"web": 8100, "experience": 8200, "entity": 8300}  # web1 = 8101, ...


def _default_sqlite_path() -> Path:
    return Path(os.environ.get("LAB_SQLITE_PATH") or REPO_DIR / "data" / "marketplace.sqlite3")


def _default_secrets_dir() -> Path:
    return Path(os.environ.get("LAB_SECRETS_DIR") or REPO_DIR / ".secrets")


@dataclass(frozen=True)
class StackConfig:
    web: int = 2
    experience: int = 2
    entity: int = 2
    workers: int = 2  # gunicorn worker processes per instance
    threads: int = 4  # threads per gunicorn worker (gthread; see infra/gunicorn.conf.py)
    db: str = "sqlite"
    cache: str = "invalidate"
    cache_ttl: int | None = None  # seconds; None keeps the app's default
    run_dir: Path = REPO_DIR / "data" / "state"
    port_offset: int = 0
    sqlite_path: Path = field(default_factory=_default_sqlite_path)
    secrets_dir: Path = field(default_factory=_default_secrets_dir)
    seed_users: int = 200
    seed_listings: int = 5000
    seed: int = 42
    log_level: str = "WARNING"
    # more LAB_ settings for every instance, e.g. {"LAB_FAST_HASHER": "1"}
    extra_env: dict = field(default_factory=dict)
    startup_timeout: float = 30.0  # seconds for each step of `up` to become ready
    # seconds between SIGTERM and SIGKILL: above gunicorn's graceful_timeout (2 s) plus the
    # up to 1 s a gthread worker may take to notice the signal
    stop_timeout: float = 4.0

    def __post_init__(self):
        for tier in TIERS:
            count = getattr(self, tier)
            if not 1 <= count <= MAX_INSTANCES_PER_TIER:
                raise ValueError(f"{tier} instances must be 1..{MAX_INSTANCES_PER_TIER}, "
                                 f"not {count}")
        if self.workers < 1 or self.threads < 1:
            raise ValueError("workers and threads must be at least 1")
        if self.db not in DATABASES:
            raise ValueError(f"db must be one of {DATABASES}, not {self.db!r}")
        if self.cache not in CACHE_MODES:
            raise ValueError(f"cache must be one of {CACHE_MODES}, not {self.cache!r}")
        if not 0 <= self.port_offset <= 65535 - LOG_RECEIVER_PORT:  # the highest base port
            raise ValueError(f"port_offset {self.port_offset} moves ports out of range")
        # paths are kept absolute: processes are started with another working directory
        for name in ("run_dir", "sqlite_path", "secrets_dir"):
            object.__setattr__(self, name, Path(getattr(self, name)).expanduser().absolute())

    # --- ports -----------------------------------------------------------------------------
    def frontend_port(self, tier: str) -> int:
        return FRONTEND_PORTS[tier] + self.port_offset

    def instance_port(self, tier: str, number: int) -> int:
        return INSTANCE_PORT_BASE[tier] + number + self.port_offset

    @property
    def stats_port(self) -> int:
        return STATS_PORT + self.port_offset

    @property
    def log_receiver_port(self) -> int:
        return LOG_RECEIVER_PORT + self.port_offset

    @property
    def redis_port(self) -> int:
        return REDIS_PORT + self.port_offset

    @property
    def postgres_port(self) -> int:
        return POSTGRES_PORT + self.port_offset

    def instance_names(self, tier: str) -> list[str]:
        return [f"{tier}{number}" for number in range(1, getattr(self, tier) + 1)]

    def tcp_ports(self) -> dict[int, str]:
        """Every TCP port the stack listens on, with what listens there."""
        ports = {self.redis_port: "redis"}
        if self.db == "postgres":
            ports[self.postgres_port] = "postgres"
        for tier in TIERS:
            for number, name in enumerate(self.instance_names(tier), start=1):
                ports[self.instance_port(tier, number)] = name
            ports[self.frontend_port(tier)] = f"haproxy {tier} frontend"
        ports[self.stats_port] = "haproxy stats"
        return ports

    # --- (de)serialisation for the state file -----------------------------------------------
    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        for name in ("run_dir", "sqlite_path", "secrets_dir"):
            data[name] = str(data[name])
        return data

    @classmethod
    def from_json(cls, data: dict) -> "StackConfig":
        known = {item.name for item in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def replace(self, **changes) -> "StackConfig":
        return dataclasses.replace(self, **changes)
