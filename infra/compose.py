"""The containers' side of the stack: infra/docker-compose.yml reads this machine's secrets
from infra/.env (git-ignored), which `python -m infra compose-env` writes from the same secrets
directory the native stack uses, so both stacks share their credentials."""
from __future__ import annotations

import os
from pathlib import Path

from .config import REPO_DIR
from .credentials import Credentials

COMPOSE_FILE = REPO_DIR / "infra" / "docker-compose.yml"
ENV_FILE = REPO_DIR / "infra" / ".env"


def compose_variables(credentials: Credentials) -> dict[str, str]:
    """The variables docker-compose.yml requires (its `${NAME:?...}` references)."""
    return {
        "LAB_SECRET_KEY": credentials.secret_key,
        "LAB_SERVICE_TOKEN": credentials.service_token,
        "LAB_WEB_TIER_TOKEN": credentials.web_tier_token,
        "LAB_REDIS_PASSWORD": credentials.redis_password,
        "LAB_PG_PASSWORD": credentials.postgres_password,
        "LAB_HAPROXY_STATS_PASSWORD": credentials.stats_password,
    }


def write_env_file(credentials: Credentials, path: Path = ENV_FILE) -> Path:
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# docker compose variables: this machine's secrets (python -m infra "
                     "compose-env); never commit\n")
        for name, value in compose_variables(credentials).items():
            handle.write(f"{name}={value}\n")
    path.chmod(0o600)
    return path
