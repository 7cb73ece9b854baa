"""The stack's secrets, generated once per machine and kept (mode 0600) in the secrets directory
(.secrets/ by default, which git ignores). The file names and format are the ones the app's
settings use (`generated_secret`), so `manage.py` run by hand shares the running stack's
SECRET_KEY and SERVICE_TOKEN; the stack also passes them to every instance explicitly."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

STATS_USER = "lab"


def read_or_create(folder: Path, name: str) -> str:
    path = Path(folder) / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    Path(folder).mkdir(mode=0o700, parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # created meanwhile by another process: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


@dataclass(frozen=True)
class Credentials:
    secret_key: str
    service_token: str  # what the entity frontend and tier require; only experience holds it
    # What the web tier sends to the experience frontend, whose log-in rate limit it is exempt
    # from (HAProxy already limited the visitor at the web frontend). It opens nothing else.
    web_tier_token: str
    redis_password: str
    stats_password: str
    postgres_password: str
    stats_user: str = STATS_USER

    @classmethod
    def load(cls, folder: Path) -> "Credentials":
        return cls(secret_key=read_or_create(folder, "secret_key"),
                   service_token=read_or_create(folder, "service_token"),
                   web_tier_token=read_or_create(folder, "web_tier_token"),
                   redis_password=read_or_create(folder, "redis_password"),
                   stats_password=read_or_create(folder, "haproxy_stats_password"),
                   postgres_password=read_or_create(folder, "postgres_password"))
