"""Writes the marketplace's settings on a VM: /etc/marketplace/{env, service-token.env,
haproxy.env, redis.conf}, which the systemd units in infra/deploy/systemd/ read.

Why a program and not files in the repository: the secrets (Django's secret key, the service
credential, the Redis and HAProxy stats passwords) must be generated on the VM and never
committed, and HAProxy's server list must match the number of instances of each tier. The
secrets are generated once, by infra/credentials.py (the same names and format as the native
stack's .secrets/), and kept in /etc/marketplace/secrets/; running this again, e.g. with more
instances, keeps them. Ports are the native stack's (infra/config.py) and HAProxy's variables
are the ones infra/load_balancer.py gives the native stack, so the VM differs from `make up`
only where it must: the web frontend on port 80 of every address, the log on stdout (the
journal), SQLite in /var/lib/marketplace.

    sudo /opt/marketplace/.venv/bin/python -m infra.deploy.configure --web 2 --experience 2 \\
        --entity 2 --allowed-hosts 203.0.113.7,shop.example.org

infra/deploy/install.sh runs it; `--print-units` lists the instance units to enable.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from infra.config import CACHE_MODES, MAX_INSTANCES_PER_TIER, TIERS, StackConfig
from infra.credentials import Credentials
from infra import load_balancer

ETC_DIR = Path("/etc/marketplace")
STATE_DIR = Path("/var/lib/marketplace")  # StateDirectory=marketplace in the units
REDIS_MAXMEMORY = "128mb"  # well below the unit's MemoryMax=256M


def instance_units(config: StackConfig) -> list[str]:
    """The templated units that make up `config`, e.g. marketplace-web@1.service."""
    return [f"marketplace-{tier}@{number}.service"
            for tier in TIERS for number in range(1, getattr(config, tier) + 1)]


def app_environment(config: StackConfig, credentials: Credentials, *, allowed_hosts: list[str],
                    state_dir: Path = STATE_DIR) -> dict[str, str]:
    """What every tier reads (app/marketplace/settings.py); the service credential is kept
    apart (service-token.env) because the web tier must not have it."""
    env = {
        "LAB_SECRET_KEY": credentials.secret_key,
        "LAB_WEB_TIER_TOKEN": credentials.web_tier_token,
        "LAB_ALLOWED_HOSTS": ",".join(allowed_hosts),
        "LAB_ENTITY_URL": f"http://127.0.0.1:{config.frontend_port('entity')}",
        "LAB_EXPERIENCE_URL": f"http://127.0.0.1:{config.frontend_port('experience')}",
        "LAB_REDIS_URL": f"redis://:{credentials.redis_password}@127.0.0.1:{config.redis_port}/0",
        "LAB_CACHE_MODE": config.cache,
        "LAB_DB": "sqlite",
        "LAB_SQLITE_PATH": str(state_dir / "marketplace.sqlite3"),
        "LAB_LOG_LEVEL": config.log_level,
        "LAB_GUNICORN_WORKERS": str(config.workers),
        "LAB_GUNICORN_THREADS": str(config.threads),
    }
    if config.cache_ttl is not None:
        env["LAB_CACHE_TTL"] = str(config.cache_ttl)
    return env


def haproxy_environment(config: StackConfig, credentials: Credentials, *,
                        http_bind: str = ":80") -> dict[str, str]:
    """The native stack's HAProxy variables, but the web frontend on `http_bind` (every
    address, port 80) and the log on stdout, which systemd sends to the journal."""
    env = load_balancer.environment(config, credentials)
    env["LAB_HAPROXY_WEB_BIND"] = http_bind
    env["LAB_HAPROXY_LOG_TARGET"] = "stdout"
    return env


def redis_conf(config: StackConfig, credentials: Credentials) -> str:
    # Each line is documented in https://raw.githubusercontent.com/redis/redis/7.0/redis.conf
    return "\n".join([
        "# written by infra/deploy/configure.py; marketplace-redis.service reads it",
        f"port {config.redis_port}",
        "bind 127.0.0.1",
        # tell systemd when it is ready (the unit has Type=notify)
        "supervised systemd",
        "daemonize no",
        # a cache: nothing is saved to disk, a restart starts empty
        'save ""',
        "appendonly no",
        "dir /var/lib/marketplace-redis",
        'logfile ""',
        f"requirepass {credentials.redis_password}",
        # On a small droplet the cache must not grow into the app's memory. Only keys with a
        # TTL may be evicted (volatile-lru): the page cache's tag versions have none and must
        # survive, pages all have one (app/web/pagecache/tags.py).
        f"maxmemory {REDIS_MAXMEMORY}",
        "maxmemory-policy volatile-lru",
    ]) + "\n"


def env_file(values: dict[str, str], comment: str) -> str:
    """systemd's EnvironmentFile= format. Every value here is a token, an address or a number,
    never something that needs quoting; refuse anything that would."""
    lines = [f"# {comment}", "# written by infra/deploy/configure.py: run it again rather than "
             "editing this file"]
    for name, value in sorted(values.items()):
        if any(char in value for char in "\n\"'\\ $`"):
            raise ValueError(f"{name} has a character an EnvironmentFile would mangle")
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Writes `text` to `path`, readable by root only (0600) from the first byte."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    temporary.replace(path)


def configure(config: StackConfig, *, etc_dir: Path = ETC_DIR, allowed_hosts: list[str],
              http_bind: str = ":80", state_dir: Path = STATE_DIR) -> list[Path]:
    """Writes every settings file into `etc_dir` (created 0700); returns their paths."""
    etc_dir = Path(etc_dir)
    etc_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    etc_dir.chmod(0o700)
    credentials = Credentials.load(etc_dir / "secrets")
    files = {
        "env": env_file(app_environment(config, credentials, allowed_hosts=allowed_hosts,
                                        state_dir=state_dir),
                        "settings and secrets of every tier (app/marketplace/settings.py)"),
        "service-token.env": env_file({"LAB_SERVICE_TOKEN": credentials.service_token},
                                      "the entity tier's credential: entity and experience "
                                      "only, never the web tier"),
        "haproxy.env": env_file(haproxy_environment(config, credentials, http_bind=http_bind),
                                "what infra/haproxy/haproxy.cfg reads"),
        "redis.conf": redis_conf(config, credentials),
    }
    written = []
    for name, text in files.items():
        write_private(etc_dir / name, text)
        written.append(etc_dir / name)
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy.configure",
                                     description=__doc__.splitlines()[0])
    defaults = StackConfig()
    for tier in TIERS:
        parser.add_argument(f"--{tier}", type=int, default=getattr(defaults, tier),
                            choices=range(1, MAX_INSTANCES_PER_TIER + 1), metavar="N",
                            help=f"{tier} instances (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=defaults.workers,
                        help="gunicorn workers per instance (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=defaults.threads,
                        help="threads per worker (default: %(default)s)")
    parser.add_argument("--cache", choices=CACHE_MODES, default=defaults.cache,
                        help="page cache mode (default: %(default)s)")
    parser.add_argument("--allowed-hosts", default="localhost,127.0.0.1",
                        help="comma-separated host names and addresses the site answers to: "
                             "the VM's public address and domain (Django's ALLOWED_HOSTS)")
    parser.add_argument("--http-bind", default=":80",
                        help="where the web frontend listens (default: %(default)s)")
    parser.add_argument("--etc-dir", type=Path, default=ETC_DIR)
    parser.add_argument("--print-units", action="store_true",
                        help="only print the instance units this configuration needs")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    config = StackConfig(web=args.web, experience=args.experience, entity=args.entity,
                         workers=args.workers, threads=args.threads, cache=args.cache)
    if args.print_units:
        print(" ".join(instance_units(config)))
        return 0
    hosts = [host.strip() for host in args.allowed_hosts.split(",") if host.strip()]
    # HAProxy's health checks send Host: localhost (haproxy.cfg)
    hosts += [host for host in ("localhost", "127.0.0.1") if host not in hosts]
    for path in configure(config, etc_dir=args.etc_dir, allowed_hosts=hosts,
                          http_bind=args.http_bind):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
