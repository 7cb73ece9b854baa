"""The whole stack on one machine, as native processes: Redis, the database, each tier's gunicorn
instances and HAProxy in front of them, started in that order, each waited for until it is
ready, and stopped by pid.

State lives in the run directory (data/state/ by default), so any later command, another
process or a notebook can find a running stack again (`Stack.attach`):

    stack.json          the configuration it was started with, and each process's start time
                        (to tell a live pid from a pid the system has since given to another
                        process)
    pids/<name>.pid     one per process: log-receiver, redis, postgres, entity1.., experience1..,
                        web1.., haproxy
    logs/<name>.log     each process's output
    haproxy.log         HAProxy's access log (HTTP log format) and server state changes
    redis.conf          Redis's settings, with its password (mode 0600)
    postgres/           the throwaway PostgreSQL cluster, with --db postgres
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from . import load_balancer
from .config import APP_DIR, REPO_DIR, TIERS, StackConfig
from .credentials import Credentials
from .postgres import ThrowawayCluster
from .processes import (StackError, is_alive, kill_group, port_is_free, port_owner,
                        process_create_time, process_tree, read_pid, spawn, stop_processes,
                        tail, wait_until, write_pid)

GUNICORN_CONF = REPO_DIR / "infra" / "gunicorn.conf.py"
PREPARE_DATABASE = REPO_DIR / "infra" / "prepare_database.py"  # run as a script, as in the image
ACCESS_LOG = "access"  # the name under which logs() returns HAProxy's access log


class StackAlreadyRunning(StackError):
    """The run directory already has live processes: stop them first, or attach to them."""


@dataclass(frozen=True)
class Instance:
    name: str  # "web1": also its X-Served-By and its HAProxy server name
    tier: str
    number: int
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class ProcessStatus:
    name: str
    kind: str  # log-receiver, redis, postgres, entity, experience, web, haproxy
    ports: str
    pid: int | None
    alive: bool
    healthy: bool
    health: str  # what the health probe said, for people
    rss: int = 0  # bytes, the process and its children
    haproxy_state: str | None = None  # instances: UP / DOWN / ... as HAProxy sees them


@dataclass
class Memory:
    """Resident memory of the stack's processes (each with its children, e.g. gunicorn
    workers). RSS counts pages shared between processes once per process, so it overstates
    what the stack costs; PSS shares them out and adds up to the real figure."""
    rss: int
    pss: int | None
    processes: int
    rss_by_name: dict[str, int] = field(default_factory=dict)

    @property
    def rss_mb(self) -> float:
        return self.rss / 2**20

    @property
    def pss_mb(self) -> float | None:
        return None if self.pss is None else self.pss / 2**20


def _load_state(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "stack.json").read_text())
    except (FileNotFoundError, ValueError):
        return None


def free_port_offset(config: StackConfig | None = None, start: int = 10000, stop: int = 24000,
                     step: int = 500) -> int:
    """A port offset at which every port of `config` is free: for tests and side-by-side
    stacks. (Offsets stay below 24000 so no port enters the kernel's ephemeral range.)"""
    config = config or StackConfig()
    for offset in range(start, stop + 1, step):
        moved = config.replace(port_offset=offset)
        if all(port_is_free(port) for port in moved.tcp_ports()) and port_is_free(
                moved.log_receiver_port, udp=True):
            return offset
    raise StackError(f"no port offset in {start}..{stop} has all the stack's ports free")


def stop_everything(root: Path | str, *, progress=print) -> list[Path]:
    """Stops every stack whose run directory is `root` or below it (e.g. what a failed
    notebook left running in its run folder); returns their run directories."""
    stopped = []
    for pid_dir in sorted(Path(root).rglob("pids")):
        if pid_dir.is_dir() and any(pid_dir.glob("*.pid")):
            stack = Stack.load(pid_dir.parent, progress=progress)
            if stack.is_running():
                stack.down()
                stopped.append(stack.run_dir)
            else:
                stack.clean_stale_pid_files()
    return stopped


class Stack:
    """One stack, described by a StackConfig and found again through its run directory.

        with Stack(StackConfig(web=2)).running() as stack:
            httpx.get(stack.web_url + "/healthz")
            stack.kill("web1"); stack.restart("web1")
    """

    def __init__(self, config: StackConfig | None = None, *, progress=print):
        self.config = config or StackConfig()
        self._progress = progress or (lambda *args, **kwargs: None)
        self._credentials: Credentials | None = None
        self._http_client: httpx.Client | None = None
        self._state = _load_state(self.config.run_dir) or {}
        # stack.json is rewritten whenever a process starts or stops, and the lab restarts
        # instances from several threads at once (a whole tier brought back together)
        self._state_lock = threading.RLock()

    # --- finding a stack ------------------------------------------------------------------
    @classmethod
    def load(cls, run_dir: Path | str | None = None, *, progress=print) -> "Stack":
        """The stack of a run directory, with the configuration it was started with (or the
        default configuration when nothing was started there)."""
        run_dir = Path(run_dir).absolute() if run_dir else StackConfig().run_dir
        state = _load_state(run_dir)
        if state and "config" in state:
            config = StackConfig.from_json({**state["config"], "run_dir": str(run_dir)})
        else:
            config = StackConfig(run_dir=run_dir)
        return cls(config, progress=progress)

    @classmethod
    def attach(cls, run_dir: Path | str | None = None, *, progress=print) -> "Stack | None":
        """The running stack of a run directory (e.g. one `make up` started), or None."""
        stack = cls.load(run_dir, progress=progress)
        return stack if stack.is_running() else None

    # --- where things are -----------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.config.run_dir

    @property
    def pid_dir(self) -> Path:
        return self.run_dir / "pids"

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def haproxy_log_path(self) -> Path:
        return self.run_dir / "haproxy.log"

    def _url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    @property
    def web_url(self) -> str:
        return self._url(self.config.frontend_port("web"))

    @property
    def experience_url(self) -> str:
        return self._url(self.config.frontend_port("experience"))

    @property
    def entity_url(self) -> str:
        return self._url(self.config.frontend_port("entity"))

    @property
    def stats_url(self) -> str:
        return self._url(self.config.stats_port)

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            self._credentials = Credentials.load(self.config.secrets_dir)
        return self._credentials

    @property
    def stats_auth(self) -> tuple[str, str]:
        return self.credentials.stats_user, self.credentials.stats_password

    @property
    def service_token(self) -> str:
        """The entity tier's credential (header X-Service-Token)."""
        return self.credentials.service_token

    @property
    def redis_url(self) -> str:
        return (f"redis://:{self.credentials.redis_password}@127.0.0.1:"
                f"{self.config.redis_port}/0")

    def instances(self, tier: str | None = None) -> list[Instance]:
        tiers = [tier] if tier else list(TIERS)
        unknown = set(tiers) - set(TIERS)
        if unknown:
            raise ValueError(f"unknown tier {unknown.pop()!r}; tiers are {', '.join(TIERS)}")
        return [Instance(name, each, number, self.config.instance_port(each, number))
                for each in tiers
                for number, name in enumerate(self.config.instance_names(each), start=1)]

    def _instance(self, name: str) -> Instance:
        for instance in self.instances():
            if instance.name == name:
                return instance
        raise StackError(f"no instance named {name!r} in this stack "
                         f"({', '.join(i.name for i in self.instances())})")

    def process_names(self) -> list[str]:
        """Every process of the stack, in start order."""
        names = ["log-receiver", "redis"]
        if self.config.db == "postgres":
            names.append("postgres")
        names += [instance.name for instance in self.instances()]
        return names + ["haproxy"]

    def _kind(self, name: str) -> str:
        for tier in TIERS:
            if name.startswith(tier) and name[len(tier):].isdigit():
                return tier
        return name

    def _ports(self, name: str) -> str:
        config = self.config
        if name == "log-receiver":
            return f"{config.log_receiver_port}/udp"
        if name == "redis":
            return str(config.redis_port)
        if name == "postgres":
            return str(config.postgres_port)
        if name == "haproxy":
            return ",".join(str(port) for port in
                            [*(config.frontend_port(tier) for tier in ("web", "experience",
                                                                        "entity")),
                             config.stats_port])
        return str(self._instance(name).port)

    # --- pids and state ---------------------------------------------------------------------
    def _pid_file(self, name: str) -> Path:
        return self.pid_dir / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        return read_pid(self._pid_file(name))

    def _create_time(self, name: str) -> float | None:
        return self._state.get("processes", {}).get(name, {}).get("create_time")

    def is_alive(self, name: str) -> bool:
        return is_alive(self.pid(name), self._create_time(name))

    def is_running(self) -> bool:
        """True when any process of the run directory is alive."""
        return any(self.is_alive(name) for name in self._pid_file_names())

    def _pid_file_names(self) -> list[str]:
        if not self.pid_dir.is_dir():
            return []
        return sorted(path.stem for path in self.pid_dir.glob("*.pid"))

    def _save_state(self) -> None:
        with self._state_lock:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            temporary = self.run_dir / "stack.json.tmp"
            temporary.write_text(json.dumps(self._state, indent=2) + "\n")
            temporary.replace(self.run_dir / "stack.json")

    def _record(self, name: str, pid: int) -> None:
        write_pid(self._pid_file(name), pid)
        with self._state_lock:
            self._state.setdefault("processes", {})[name] = {
                "pid": pid, "create_time": process_create_time(pid)}
            self._save_state()

    def _forget(self, name: str) -> None:
        self._pid_file(name).unlink(missing_ok=True)
        with self._state_lock:
            self._state.get("processes", {}).pop(name, None)

    def clean_stale_pid_files(self) -> list[str]:
        """Removes pid files whose process is gone, saying so; returns their names."""
        stale = []
        for name in self._pid_file_names():
            if not self.is_alive(name):
                pid = self.pid(name)
                self._progress(f"removed a stale pid file for {name} "
                               f"(pid {pid} is not running)")
                self._forget(name)
                stale.append(name)
        if stale and self._state:
            self._save_state()
        return stale

    # --- starting -----------------------------------------------------------------------------
    def up(self) -> "Stack":
        """Starts every process in order, waiting for each to be ready; on any failure stops
        what it started and raises StackError saying what went wrong."""
        started = time.monotonic()
        config = self.config
        self._progress(
            f"starting the stack in {self.run_dir}: {config.web} web, {config.experience} "
            f"experience, {config.entity} entity instances ({config.workers} workers x "
            f"{config.threads} threads each), {config.db}, cache {config.cache}")
        self._state = _load_state(self.run_dir) or {}
        self.clean_stale_pid_files()
        alive = [name for name in self._pid_file_names() if self.is_alive(name)]
        if alive:
            raise StackAlreadyRunning(
                f"a stack is already running in {self.run_dir} ({', '.join(alive)}): "
                f"`python -m infra down` stops it")
        self._check_programs()
        self._check_ports()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for log in [*self.log_dir.glob("*.log"), self.haproxy_log_path]:
            log.write_text("")  # each run's logs start empty
        self._state = {"config": config.to_json(), "started_at": time.time(), "processes": {}}
        self._save_state()
        try:
            self._start_log_receiver(wait=False)  # it has until HAProxy starts to be ready
            self._start_redis()
            self._start_database()
            for tier in TIERS:
                self._start_tier(tier)
            self._start_haproxy()
        except BaseException as error:
            self._progress(f"start failed ({type(error).__name__}): stopping what was started")
            self.down(quiet=True)
            raise
        memory = self.memory()
        self._progress(
            f"stack healthy in {time.monotonic() - started:.1f} s: {len(self.instances())} "
            f"instances, {memory.processes} processes, RSS {memory.rss_mb:.0f} MB"
            + (f" (PSS {memory.pss_mb:.0f} MB)" if memory.pss is not None else "")
            + f"; the site is at {self.web_url}")
        return self

    def _check_programs(self) -> None:
        missing = [program for program in ("redis-server", load_balancer.HAPROXY_BIN)
                   if shutil.which(program) is None]
        if missing:
            raise StackError(f"not installed: {', '.join(missing)}; `make setup` installs "
                             f"them (bash infra/install_system_packages.sh {' '.join(missing)})")

    def _check_ports(self) -> None:
        taken = [(port, what, port_owner(port)) for port, what in
                 sorted(self.config.tcp_ports().items()) if not port_is_free(port)]
        if not port_is_free(self.config.log_receiver_port, udp=True):
            port = self.config.log_receiver_port
            taken.append((port, "haproxy log receiver (UDP)", port_owner(port, udp=True)))
        if taken:
            lines = "\n".join(f"  port {port} ({what}) is in use by {owner}"
                              for port, what, owner in taken)
            raise StackError(f"cannot start: ports the stack needs are taken\n{lines}\n"
                             f"stop what holds them, or move the stack's ports "
                             f"(--port-offset / StackConfig(port_offset=...))")

    def _step(self, what: str, started: float) -> None:
        self._progress(f"  {what} ({time.monotonic() - started:.2f} s)")

    def _spawn(self, name: str, argv: list[str], env: dict) -> int:
        process = spawn(argv, env=env, log_path=self.log_dir / f"{name}.log", cwd=REPO_DIR)
        self._record(name, process.pid)
        return process.pid

    def _wait_ready(self, names: list[str], ready, what: str,
                    timeout: float | None = None) -> None:
        """Waits until `ready(name)` holds for every name; fails at once, with the end of its
        log, if one of the processes exits meanwhile."""
        pending = list(names)

        def check():
            for name in list(pending):
                if not self.is_alive(name):
                    raise StackError(f"{name} exited while starting; the end of its log "
                                     f"({self.log_dir / (name + '.log')}):\n"
                                     f"{tail(self.log_dir / f'{name}.log')}")
                if ready(name):
                    pending.remove(name)
            return not pending

        wait_until(check, timeout=timeout or self.config.startup_timeout, what=what,
                   on_timeout=lambda: "still waiting for " + ", ".join(pending))

    def _start_log_receiver(self, wait: bool = True) -> None:
        self._spawn("log-receiver", [sys.executable, "-m", "infra.log_receiver", "--port",
                                     str(self.config.log_receiver_port), "--output",
                                     str(self.haproxy_log_path)], self._python_env())
        if wait:
            self._wait_log_receiver()

    def _wait_log_receiver(self) -> None:
        started = time.monotonic()
        port = self.config.log_receiver_port
        self._wait_ready(["log-receiver"], lambda _: not port_is_free(port, udp=True),
                         "HAProxy's log receiver")
        self._step(f"log receiver on udp :{port} -> {self.haproxy_log_path}", started)

    def _start_redis(self) -> None:
        started = time.monotonic()
        conf = self.run_dir / "redis.conf"
        conf.touch(mode=0o600)
        conf.chmod(0o600)  # it holds the password
        # https://raw.githubusercontent.com/redis/redis/7.0/redis.conf documents each line.
        conf.write_text("\n".join([
            f"port {self.config.redis_port}",
            "bind 127.0.0.1",
            # a cache: nothing is saved to disk, a restart starts empty
            'save ""',
            "appendonly no",
            f"requirepass {self.credentials.redis_password}",
            "daemonize no",
            f"dir {self.run_dir}",
            'logfile ""',  # stdout, which is logs/redis.log
        ]) + "\n")
        self._spawn("redis", ["redis-server", str(conf)], dict(os.environ))
        self._wait_ready(["redis"], lambda _: self._redis_ping(), "Redis")
        self._step(f"redis ready on :{self.config.redis_port}", started)

    def _redis_ping(self) -> bool:
        import redis

        try:
            client = redis.Redis(host="127.0.0.1", port=self.config.redis_port,
                                 password=self.credentials.redis_password, socket_timeout=1,
                                 socket_connect_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except redis.RedisError:
            return False

    def _postgres(self) -> ThrowawayCluster:
        return ThrowawayCluster(self.run_dir / "postgres", self.config.postgres_port,
                                self.credentials.postgres_password,
                                self.log_dir / "postgres.log")

    def _start_database(self) -> None:
        started = time.monotonic()
        if self.config.db == "postgres":
            cluster = self._postgres()
            cluster.initialise(self._progress)
            pid = cluster.start(self.config.startup_timeout)
            self._record("postgres", pid)
            cluster.create_database()
            self._step(f"postgres ready on :{self.config.postgres_port} "
                       f"(throwaway cluster in {cluster.data_dir})", started)
            started = time.monotonic()
        else:
            self.config.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        env = self._instance_env(self.instances("entity")[0])
        result = subprocess.run(
            [sys.executable, str(PREPARE_DATABASE),
             "--users", str(self.config.seed_users),
             "--listings", str(self.config.seed_listings), "--seed", str(self.config.seed)],
            env=env, cwd=REPO_DIR, capture_output=True, text=True, timeout=900)
        output = (result.stdout + result.stderr).strip()
        with open(self.log_dir / "prepare-database.log", "a") as log:
            log.write(output + "\n")
        if result.returncode != 0:
            raise StackError(f"preparing the database failed:\n{output[-3000:]}")
        where = (self.config.sqlite_path if self.config.db == "sqlite"
                 else f"postgres :{self.config.postgres_port}")
        summary = output.splitlines()[-1] if output else ""
        self._step(f"database ready: {where}: {summary}", started)

    # --- the app instances -------------------------------------------------------------------
    def _python_env(self) -> dict:
        # The caller's LAB_ variables are not passed on: a stack's settings come from its
        # StackConfig (and extra_env) alone, so one configuration gives the same stack from a
        # shell, from pytest (whose test settings set some) or from a notebook.
        env = {name: value for name, value in os.environ.items()
               if not name.startswith("LAB_")}
        env["PYTHONPATH"] = os.pathsep.join([str(APP_DIR), str(REPO_DIR)])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _instance_env(self, instance: Instance) -> dict:
        config, credentials = self.config, self.credentials
        env = self._python_env()
        env.update({
            "DJANGO_SETTINGS_MODULE": "marketplace.settings",
            "LAB_TIER": instance.tier,
            "LAB_INSTANCE": instance.name,
            "LAB_SECRET_KEY": credentials.secret_key,
            # Only the experience tier calls the entity tier; the web tier is given a value
            # that opens nothing (the setting must be set, or it would be read from .secrets/).
            "LAB_SERVICE_TOKEN": (credentials.service_token if instance.tier != "web"
                                  else "not-issued-to-the-web-tier"),
            # Only the web tier uses it; the others are given it so none reads .secrets/.
            "LAB_WEB_TIER_TOKEN": credentials.web_tier_token,
            "LAB_SECRETS_DIR": str(config.secrets_dir),
            "LAB_ENTITY_URL": self.entity_url,
            "LAB_EXPERIENCE_URL": self.experience_url,
            "LAB_REDIS_URL": self.redis_url,
            "LAB_CACHE_MODE": config.cache,
            "LAB_LOG_LEVEL": config.log_level,
            "LAB_DB": config.db,
            "LAB_GUNICORN_BIND": f"127.0.0.1:{instance.port}",
            "LAB_GUNICORN_WORKERS": str(config.workers),
            "LAB_GUNICORN_THREADS": str(config.threads),
        })
        if config.cache_ttl is not None:
            env["LAB_CACHE_TTL"] = str(config.cache_ttl)
        if config.db == "postgres":
            from . import postgres

            env.update({"LAB_PG_HOST": "127.0.0.1", "LAB_PG_PORT": str(config.postgres_port),
                        "LAB_PG_NAME": postgres.DATABASE, "LAB_PG_USER": postgres.USER,
                        "LAB_PG_PASSWORD": credentials.postgres_password})
        else:
            env["LAB_SQLITE_PATH"] = str(config.sqlite_path)
        env.update({key: str(value) for key, value in config.extra_env.items()})
        return env

    def _spawn_instance(self, instance: Instance) -> int:
        # checked again here, for `start`/`restart` and for a port taken since `up` checked
        # (gunicorn itself would retry binding for five seconds before it gives up)
        if not port_is_free(instance.port):
            raise StackError(f"cannot start {instance.name}: port {instance.port} is in use "
                             f"by {port_owner(instance.port)}")
        return self._spawn(instance.name,
                           [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)],
                           self._instance_env(instance))

    @property
    def _http(self) -> httpx.Client:
        """One client for every probe (making a client costs tens of milliseconds of CPU, which
        frequent readiness polls would take from the processes starting up). No keep-alive:
        an idle probe connection would delay an instance's graceful stop."""
        if self._http_client is None:
            self._http_client = httpx.Client(
                timeout=1.0, limits=httpx.Limits(max_keepalive_connections=0))
        return self._http_client

    def instance_health(self, instance: Instance, timeout: float = 1.0) -> tuple[bool, str]:
        try:
            started = time.monotonic()
            response = self._http.get(f"{instance.url}/healthz", timeout=timeout)
            elapsed = (time.monotonic() - started) * 1000
        except httpx.HTTPError as error:
            return False, f"no answer ({type(error).__name__})"
        if response.status_code == 200:
            return True, f"healthy ({elapsed:.0f} ms)"
        return False, f"unhealthy: {response.status_code} {response.text[:80]}"

    def _start_tier(self, tier: str) -> None:
        started = time.monotonic()
        instances = self.instances(tier)
        for instance in instances:
            self._spawn_instance(instance)
        by_name = {instance.name: instance for instance in instances}
        self._wait_ready(list(by_name), lambda name: self.instance_health(by_name[name])[0],
                         f"the {tier} instances")
        ports = [instance.port for instance in instances]
        self._step(f"{', '.join(by_name)} healthy on :{min(ports)}"
                   + (f"-{max(ports)}" if len(ports) > 1 else ""), started)

    # --- HAProxy ----------------------------------------------------------------------------
    def haproxy_environment(self) -> dict[str, str]:
        return load_balancer.environment(self.config, self.credentials)

    def _start_haproxy(self) -> None:
        started = time.monotonic()
        # HAProxy reads only the variables given here, so nothing stray from the caller's
        # environment (an extra LAB_WEB_SERVER_3, say) can change its configuration.
        self._wait_log_receiver()
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               **self.haproxy_environment()}
        load_balancer.check_config(env)
        pid_file = self._pid_file("haproxy")
        # -D: run as a daemon (the command returns once the listeners are bound and the
        # daemon has written its pid to -p). https://docs.haproxy.org/2.6/management.html#3
        with open(self.log_dir / "haproxy.log", "ab") as log:
            result = subprocess.run(
                [load_balancer.HAPROXY_BIN, "-D", "-p", str(pid_file), "-f",
                 str(load_balancer.HAPROXY_CFG)],
                env=env, cwd=REPO_DIR, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, timeout=30, start_new_session=True)
        if result.returncode != 0:
            raise StackError(f"haproxy did not start (exit {result.returncode}):\n"
                             f"{tail(self.log_dir / 'haproxy.log')}")
        self._record("haproxy", read_pid(pid_file))
        expected = {instance.name for instance in self.instances()}

        def all_servers_up():
            try:
                states = self.server_states()
            except httpx.HTTPError:
                return False
            return all(states.get(name, "").startswith("UP") for name in expected)

        self._wait_ready(["haproxy"], lambda _: all_servers_up(), "HAProxy's servers")
        for url, headers in [(self.web_url, {}), (self.experience_url, {}),
                             (self.entity_url, {"X-Service-Token": self.service_token})]:
            response = self._http.get(f"{url}/healthz", headers=headers, timeout=5)
            if response.status_code != 200:
                raise StackError(f"GET {url}/healthz through HAProxy answered "
                                 f"{response.status_code}")
        self._step(f"haproxy ready: web {self.web_url}, experience {self.experience_url}, "
                   f"entity {self.entity_url}, stats {self.stats_url}", started)

    def server_states(self) -> dict[str, str]:
        """HAProxy's state of each instance: {"web1": "UP", "web2": "DOWN", ...}."""
        return load_balancer.server_states(self.stats_url, self.stats_auth, client=self._http)

    def wait_for_server_state(self, name: str, state: str = "DOWN",
                              timeout: float = 5.0) -> float:
        """Waits until HAProxy reports instance `name` in `state` (UP, DOWN, MAINT); returns
        the seconds waited."""
        started = time.monotonic()

        def reached():
            try:
                return self.server_states().get(name, "").split(" ")[0] == state
            except httpx.HTTPError:
                return False

        wait_until(reached, timeout=timeout, what=f"HAProxy marking {name} {state}",
                   interval=0.02)
        return time.monotonic() - started

    # --- one process at a time (failover experiments) ---------------------------------------
    def kill(self, name: str) -> None:
        """SIGKILL the process and its children at once, as a crash would."""
        pid = self.pid(name)
        if not self.is_alive(name):
            raise StackError(f"{name} is not running")
        kill_group(pid)
        self._progress(f"killed {name} (pid {pid})")

    def stop(self, name: str) -> None:
        """Stops one process gracefully (SIGTERM, SIGKILL after the stop timeout)."""
        pid = self.pid(name)
        if self.is_alive(name):
            stop_processes([(pid, self._stop_signal(name))], timeout=self.config.stop_timeout)
            self._progress(f"stopped {name} (pid {pid})")
        self._forget(name)
        self._save_state()

    def start(self, name: str, *, in_rotation: bool = True) -> None:
        """Starts one process that is not running and waits until it is ready (for an
        instance, healthy and, with `in_rotation`, UP again in HAProxy)."""
        if self.is_alive(name):
            raise StackError(f"{name} is already running (pid {self.pid(name)})")
        started = time.monotonic()
        if name == "redis":
            self._start_redis()
            return
        if name == "log-receiver":
            self._start_log_receiver()
            return
        if name == "haproxy":
            self._start_haproxy()
            return
        if name == "postgres":
            self._record("postgres", self._postgres().start(self.config.startup_timeout))
            return
        instance = self._instance(name)
        self._spawn_instance(instance)
        self._wait_ready([name], lambda _: self.instance_health(instance)[0], name)
        if in_rotation and self.is_alive("haproxy"):
            self.wait_for_server_state(name, "UP", timeout=self.config.startup_timeout)
        self._progress(f"started {name} in {time.monotonic() - started:.2f} s")

    def restart(self, name: str, *, in_rotation: bool = True) -> None:
        if self.is_alive(name):
            self.stop(name)
        self.start(name, in_rotation=in_rotation)

    def _stop_signal(self, name: str) -> int:
        # PostgreSQL: SIGINT is its "fast" shutdown (SIGTERM would wait for every client
        # connection to close). https://www.postgresql.org/docs/15/server-shutdown.html
        # Everything else stops gracefully on SIGTERM (gunicorn: requests in flight finish,
        # for at most its graceful_timeout). https://docs.gunicorn.org/en/stable/signals.html
        return signal.SIGINT if name == "postgres" else signal.SIGTERM

    # --- stopping -----------------------------------------------------------------------------
    def down(self, *, quiet: bool = False) -> None:
        """Stops every process of the run directory by pid (HAProxy first, so no request
        reaches an instance that is stopping), removes the pid files and the state, and
        checks that no port of the stack is still listened on."""
        started = time.monotonic()
        self._state = _load_state(self.run_dir) or self._state
        names = self._pid_file_names()
        if not names and not quiet:
            self._progress(f"no stack is running in {self.run_dir}")
        self.clean_stale_pid_files()
        live = [name for name in self._pid_file_names() if self.is_alive(name)]
        killed = []
        if "haproxy" in live:
            # First, and gracefully: a soft stop closes the listeners and lets requests in
            # flight finish (for at most hard-stop-after, 3 s), so that no request reaches an
            # instance that is stopping. https://docs.haproxy.org/2.6/management.html#4
            killed += stop_processes([(self.pid("haproxy"), signal.SIGUSR1)],
                                     timeout=self.config.stop_timeout)
        rest = [(self.pid(name), self._stop_signal(name)) for name in live if name != "haproxy"]
        killed += stop_processes(rest, timeout=self.config.stop_timeout)
        for name in live:
            self._forget(name)
        if killed:
            self._progress(f"had to SIGKILL pids {killed} after {self.config.stop_timeout:g} s")
        (self.run_dir / "redis.conf").unlink(missing_ok=True)
        if (self.run_dir / "postgres").exists():
            self._postgres().remove()
        (self.run_dir / "stack.json").unlink(missing_ok=True)
        self._state = {}
        still = [port for port in self.config.tcp_ports() if not port_is_free(port)]
        if still and live:
            self._progress(f"warning: ports still listened on after down: {still} "
                           f"({', '.join(port_owner(port) for port in still)})")
        if live and not quiet:
            self._progress(f"stack stopped in {time.monotonic() - started:.1f} s "
                           f"({len(live)} processes)")

    @contextmanager
    def running(self, *, reuse: bool = False):
        """Starts the stack and stops it when the block ends. With `reuse`, a healthy stack
        already running in the same run directory is used as it is, and left running."""
        if reuse:
            existing = Stack.attach(self.run_dir, progress=self._progress)
            if existing is not None and existing.is_healthy():
                self._progress(f"using the stack already running in {self.run_dir}")
                yield existing
                return
        self.up()
        try:
            yield self
        finally:
            self.down()

    # --- looking at it ------------------------------------------------------------------------
    def status(self) -> list[ProcessStatus]:
        try:
            states = self.server_states() if self.is_alive("haproxy") else {}
        except httpx.HTTPError:
            states = {}
        statuses = []
        for name in self.process_names():
            pid, alive = self.pid(name), self.is_alive(name)
            healthy, health = (self._health(name, states) if alive else
                               (False, "not running" if pid is None else
                                f"dead (stale pid file, pid {pid})"))
            statuses.append(ProcessStatus(
                name=name, kind=self._kind(name), ports=self._ports(name), pid=pid,
                alive=alive, healthy=healthy, health=health,
                rss=self._tree_rss(pid) if alive else 0,
                haproxy_state=states.get(name)))
        return statuses

    def is_healthy(self) -> bool:
        return all(status.healthy for status in self.status())

    def _health(self, name: str, states: dict) -> tuple[bool, str]:
        if name == "log-receiver":
            return True, f"receiving on udp :{self.config.log_receiver_port}"
        if name == "redis":
            return (True, "PONG") if self._redis_ping() else (False, "no PONG")
        if name == "postgres":
            return (True, "accepting connections") if self._postgres().ping() else (
                False, "refuses connections")
        if name == "haproxy":
            if not states:
                return False, "stats page does not answer"
            up = sum(state.startswith("UP") for state in states.values())
            return up == len(states), f"{up}/{len(states)} servers UP"
        return self.instance_health(self._instance(name))

    def _tree_rss(self, pid: int | None) -> int:
        total = 0
        for process in process_tree(pid) if pid else []:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total

    def memory(self) -> Memory:
        """Resident memory of every live process of the stack, children included."""
        rss, pss, count, by_name = 0, 0, 0, {}
        for name in self.process_names():
            if not self.is_alive(name):
                continue
            name_rss = 0
            for process in process_tree(self.pid(name)):
                try:
                    info = process.memory_full_info()
                    name_rss += info.rss
                    pss = None if pss is None else pss + info.pss
                except psutil.AccessDenied:
                    name_rss += process.memory_info().rss
                    pss = None
                except psutil.Error:
                    continue
                count += 1
            by_name[name] = name_rss
            rss += name_rss
        return Memory(rss=rss, pss=pss, processes=count, rss_by_name=by_name)

    def log_path(self, name: str) -> Path:
        if name == ACCESS_LOG:
            return self.haproxy_log_path
        if name not in self.process_names() and name != "prepare-database":
            raise StackError(f"no log named {name!r}: {ACCESS_LOG}, prepare-database or one "
                             f"of {', '.join(self.process_names())}")
        return self.log_dir / f"{name}.log"

    def logs(self, name: str, lines: int | None = None) -> str:
        """The output of process `name` (or, for "access", HAProxy's access log); the last
        `lines` lines when given."""
        path = self.log_path(name)
        if lines is not None:
            return tail(path, lines)
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
