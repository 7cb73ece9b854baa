"""python -m infra: the stack on one machine from the command line (`make up/down/status` call
it). `python -m infra COMMAND --help` describes each command."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from pathlib import Path

from .compose import COMPOSE_FILE, ENV_FILE, write_env_file
from .config import CACHE_MODES, DATABASES, MAX_INSTANCES_PER_TIER, StackConfig
from .credentials import Credentials
from .processes import StackError
from .stack import ACCESS_LOG, Stack, StackAlreadyRunning

NOT_RUNNING = 3  # exit status of `status` when nothing runs (as `systemctl status` does)


def _instances(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_INSTANCES_PER_TIER:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_INSTANCES_PER_TIER}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    defaults = StackConfig()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--run-dir", default=str(defaults.run_dir),
                        help="where the stack keeps pid files, logs and state "
                             "(default: %(default)s)")
    parser = argparse.ArgumentParser(
        prog="python -m infra",
        description="Run the marketplace's stack on this machine: Redis, the database, each "
                    "tier's gunicorn instances and HAProxy in front of them.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", parents=[common], help="start the stack and wait until "
                             "it is healthy")
    up.add_argument("--web", type=_instances, default=defaults.web,
                    help="web instances (default: %(default)s)")
    up.add_argument("--exp", "--experience", dest="experience", type=_instances,
                    default=defaults.experience,
                    help="experience instances (default: %(default)s)")
    up.add_argument("--entity", type=_instances, default=defaults.entity,
                    help="entity instances (default: %(default)s)")
    up.add_argument("--workers", type=_positive, default=defaults.workers,
                    help="gunicorn worker processes per instance (default: %(default)s)")
    up.add_argument("--threads", type=_positive, default=defaults.threads,
                    help="threads per gunicorn worker (gthread; default: %(default)s)")
    up.add_argument("--db", choices=DATABASES, default=defaults.db,
                    help="sqlite (default), or postgres: a throwaway cluster in the run "
                         "directory, installed if missing")
    up.add_argument("--cache", choices=CACHE_MODES, default=defaults.cache,
                    help="the web tier's page cache mode (default: %(default)s)")
    up.add_argument("--cache-ttl", type=_positive, default=None,
                    help="seconds a cached page lives (default: the app's)")
    up.add_argument("--sqlite-path", default=str(defaults.sqlite_path),
                    help="the SQLite database file (default: %(default)s)")
    up.add_argument("--users", type=int, default=defaults.seed_users,
                    help="seed users when the database is empty (default: %(default)s)")
    up.add_argument("--listings", type=int, default=defaults.seed_listings,
                    help="seed listings when the database is empty (default: %(default)s)")
    up.add_argument("--port-offset", type=int, default=0,
                    help="add this to every port, to run beside another stack")
    up.add_argument("--log-level", default=defaults.log_level,
                    help="the app's log level (default: %(default)s)")

    commands.add_parser("down", parents=[common], help="stop everything the stack started")
    status = commands.add_parser("status", parents=[common],
                                 help="every process, its ports, pid, health and memory")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    logs = commands.add_parser("logs", parents=[common], help="show a process's log")
    logs.add_argument("name", nargs="?",
                      help=f"a process (web1, redis, haproxy, ...) or {ACCESS_LOG!r} for "
                           f"HAProxy's access log; without it, list the logs")
    logs.add_argument("-n", "--lines", type=int, default=40,
                      help="the last N lines (default: %(default)s)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing (tail -f)")

    compose = commands.add_parser(
        "compose-env", help="write infra/.env, the variables docker-compose.yml needs (this "
                            "machine's secrets)")
    compose.add_argument("--secrets-dir", default=str(defaults.secrets_dir),
                         help="where the secrets are kept (default: %(default)s)")
    compose.add_argument("--output", default=str(ENV_FILE), help="default: %(default)s")

    for name, text in [("kill", "SIGKILL one process and its children (a crash)"),
                       ("stop", "stop one process gracefully"),
                       ("start", "start one stopped process and wait until it is ready"),
                       ("restart", "stop (if running) and start one process, waiting until "
                                   "it is healthy and back in HAProxy's rotation")]:
        command = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("name", help="e.g. web1, experience2, entity1, redis, haproxy")
    return parser


def _config_from(args) -> StackConfig:
    return StackConfig(web=args.web, experience=args.experience, entity=args.entity,
                       workers=args.workers, threads=args.threads, db=args.db,
                       cache=args.cache, cache_ttl=args.cache_ttl, run_dir=args.run_dir,
                       port_offset=args.port_offset, sqlite_path=args.sqlite_path,
                       seed_users=args.users, seed_listings=args.listings,
                       log_level=args.log_level)


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.0f} MB" if size else "-"


def print_status(stack: Stack) -> int:
    if not stack.is_running():
        print(f"no stack is running in {stack.run_dir}")
        stack.clean_stale_pid_files()
        return NOT_RUNNING
    statuses = stack.status()
    started = stack._state.get("started_at")
    uptime = f", up {time.time() - started:.0f} s" if started else ""
    config = stack.config
    print(f"stack in {stack.run_dir} ({config.db}, cache {config.cache}, {config.workers} "
          f"workers x {config.threads} threads per instance{uptime})")
    rows = [("NAME", "PORTS", "PID", "ALIVE", "HAPROXY", "HEALTH", "RSS")]
    for status in statuses:
        rows.append((status.name, status.ports, str(status.pid or "-"),
                     "yes" if status.alive else "NO", status.haproxy_state or "",
                     status.health, _megabytes(status.rss)))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    memory = stack.memory()
    pss = f" (PSS {memory.pss_mb:.0f} MB)" if memory.pss is not None else ""
    print(f"total: RSS {memory.rss_mb:.0f} MB{pss} in {memory.processes} processes")
    secrets = config.secrets_dir / "haproxy_stats_password"
    print(f"site {stack.web_url}   experience API {stack.experience_url}   "
          f"stats {stack.stats_url} (user {stack.stats_auth[0]}, password in {secrets})")
    unhealthy = [status.name for status in statuses if not status.healthy]
    if unhealthy:
        print(f"not healthy: {', '.join(unhealthy)}")
        return 1
    return 0


def status_json(stack: Stack) -> int:
    running = stack.is_running()
    memory = stack.memory() if running else None
    print(json.dumps({
        "run_dir": str(stack.run_dir), "running": running,
        "urls": {"web": stack.web_url, "experience": stack.experience_url,
                 "entity": stack.entity_url, "stats": stack.stats_url},
        "processes": [status.__dict__ for status in stack.status()] if running else [],
        "memory": memory.__dict__ if memory else None,
    }, indent=2))
    return 0 if running else NOT_RUNNING


def show_logs(stack: Stack, args) -> int:
    if not args.name:
        for name in [ACCESS_LOG, *stack.process_names(), "prepare-database"]:
            path = stack.log_path(name)
            size = path.stat().st_size if path.exists() else 0
            print(f"{name:18} {path} ({size} bytes)")
        return 0
    path = stack.log_path(args.name)
    if args.follow:
        os.execvp("tail", ["tail", "-n", str(args.lines), "-F", str(path)])
    print(stack.logs(args.name, lines=args.lines))
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "up":
            stack = Stack(_config_from(args))
            try:
                stack.up()
            except StackAlreadyRunning as error:
                running = Stack.load(args.run_dir)
                if running.config == stack.config:
                    print("the stack is already running with these settings:")
                    return print_status(running)
                print(f"error: {error} (it runs with other settings)", file=sys.stderr)
                return 1
            return 0
        if args.command == "compose-env":
            path = write_env_file(Credentials.load(Path(args.secrets_dir)), Path(args.output))
            print(f"wrote {path} (mode 0600): docker compose -f {COMPOSE_FILE} up --build")
            return 0
        stack = Stack.load(args.run_dir)
        if args.command == "down":
            stack.down()
            return 0
        if args.command == "status":
            return status_json(stack) if args.json else print_status(stack)
        if args.command == "logs":
            return show_logs(stack, args)
        getattr(stack, args.command)(args.name)  # kill, stop, start, restart
        return 0
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
