"""HAProxy for the native stack: the environment infra/haproxy/haproxy.cfg reads, the
configuration check, and HAProxy's own view of the servers (its stats CSV), which is what
says whether an instance is in rotation."""
from __future__ import annotations

import csv
import io
import re
import subprocess
from pathlib import Path

import httpx

from .config import REPO_DIR, TIERS, StackConfig
from .credentials import Credentials
from .processes import StackError

HAPROXY_CFG = REPO_DIR / "infra" / "haproxy" / "haproxy.cfg"
HAPROXY_BIN = "haproxy"


def server_variable(tier: str, number: int) -> str:
    return f"LAB_{tier.upper()}_SERVER_{number}"


def environment(config: StackConfig, credentials: Credentials) -> dict[str, str]:
    """The variables haproxy.cfg reads, for the native stack (everything on 127.0.0.1)."""
    env = {
        "LAB_HAPROXY_LOG_TARGET": f"127.0.0.1:{config.log_receiver_port}",
        "LAB_HAPROXY_STATS_BIND": f"127.0.0.1:{config.stats_port}",
        "LAB_HAPROXY_STATS_USER": credentials.stats_user,
        "LAB_HAPROXY_STATS_PASSWORD": credentials.stats_password,
        "LAB_HAPROXY_SERVER_MAXCONN": str(config.workers * config.threads),
        "LAB_SERVICE_TOKEN": credentials.service_token,
        "LAB_WEB_TIER_TOKEN": credentials.web_tier_token,
    }
    for tier in TIERS:
        env[f"LAB_HAPROXY_{tier.upper()}_BIND"] = f"127.0.0.1:{config.frontend_port(tier)}"
        for number in range(1, getattr(config, tier) + 1):
            env[server_variable(tier, number)] = f"127.0.0.1:{config.instance_port(tier, number)}"
    return env


def check_config(env: dict[str, str], cfg: Path = HAPROXY_CFG) -> str:
    """`haproxy -c`: raises StackError with HAProxy's own message when the file does not
    parse with this environment; returns its output (warnings) otherwise."""
    result = subprocess.run([HAPROXY_BIN, "-c", "-f", str(cfg)], env=env, capture_output=True,
                            text=True, timeout=30)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise StackError(f"haproxy -c -f {cfg} failed:\n{output}")
    return output


def referenced_variables(cfg: Path = HAPROXY_CFG) -> tuple[set[str], set[str]]:
    """(required, optional) environment variables of the file: optional ones are those only
    tested with `.if defined(...)`, used inside such a block, or given a default
    ("${NAME-default}")."""
    required, optional = set(), set()
    guarded = []
    for line in Path(cfg).read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        condition = re.match(r"\.if\s+defined\((\w+)\)", stripped)
        if condition:
            guarded.append(condition.group(1))
            optional.add(condition.group(1))
            continue
        if stripped.startswith(".endif"):
            guarded.pop()
            continue
        for name, default in re.findall(r"\$\{(\w+)(-[^}]*)?\}", line):
            (optional if guarded or default else required).add(name)
    return required, optional - required


# --- HAProxy's view of the servers ---------------------------------------------------------
def read_stats(stats_url: str, auth: tuple[str, str], timeout: float = 1.0,
               client: httpx.Client | None = None) -> list[dict]:
    """The stats page as CSV rows (one per frontend, backend and server).
    https://docs.haproxy.org/2.6/management.html#9.1"""
    response = (client or httpx).get(f"{stats_url.rstrip('/')}/;csv;norefresh", auth=auth,
                                     timeout=timeout)
    response.raise_for_status()
    text = response.text.lstrip("# ")
    return list(csv.DictReader(io.StringIO(text)))


def server_states(stats_url: str, auth: tuple[str, str],
                  client: httpx.Client | None = None) -> dict[str, str]:
    """{"web1": "UP", "web2": "DOWN", ...}: HAProxy's state of every server (UP, DOWN, MAINT,
    and transitional states such as "UP 1/2" or "DOWN 1/2")."""
    return {row["svname"]: row["status"] for row in read_stats(stats_url, auth, client=client)
            if row["svname"] not in ("FRONTEND", "BACKEND")}
