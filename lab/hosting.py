"""Laptop vs VM: the same locust experiment against the stack on this machine and against the
same stack on a simulated small droplet, with the network's share of the difference and the
CPU's share told apart.

Why a simulation: there is no cloud account and no route to the internet here. What makes a
droplet different from a laptop, for a load test run from the laptop, is three things, and each
is reproduced with a kernel mechanism rather than guessed:

- a separate host: a network namespace (`ip netns`) with its own loopback and its own ports,
  joined to this machine by a veth pair, with addresses from 198.18.0.0/15 (RFC 2544's range
  for network benchmarks: 198.18.0.1 here, 198.18.0.2 the VM); nothing else ever uses them;
- a small machine: one CPU (a CFS quota in the cpu cgroup) and a memory cap (the memory
  cgroup), the size of a basic droplet;
- a path over the internet: netem on the veth pair where the kernel has it, otherwise (as on
  this machine, whose kernel has no netem) a relay that delays every byte by a one-way delay
  with jitter in each direction (lab/hosting_relay.py). The round trip it really adds is
  measured, not assumed.

Four scenarios separate the effects, as a 2x2 design on one stack in the namespace:
`laptop` (the VM's limits lifted: every core of this machine, reached directly), `laptop+net`
(the delay alone), `vm-local` (one CPU and the memory cap alone) and `vm` (both, which is the
laptop-to-droplet case). One stack serves all four, so nothing but the factor under study
changes between them: the limits are written into the cgroup before each run and lifted
again, and the page cache is emptied before each run so every run starts alike. The direct
path is a veth hop, which like loopback never leaves the kernel, so "laptop" is the stack as
it runs on this machine. The load test is the perf tooling's own
(lab.loadtest.run_locust with tests/load/locustfile.py), the same for all four, and the
stack's CPU time and the quota's throttling are sampled during each run, so each load step
says how many cores the stack really got. Everything is torn down afterwards, whatever
happens: the stack's processes by pid, whatever is left in the VM's cgroups, the veth pair,
the namespace and the cgroups themselves. Creating namespaces needs root: `availability()`
says why not otherwise, and `compare` raises HostingUnavailable with that reason before it
starts anything.

A notebook calls `compare(...)` (or `HostingComparison.load(out_dir)` for a saved one), then
`rtt_table`, `comparison_table`, `effects`, `resources_table` and `plot_comparison`.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import math
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

REPO_DIR = Path(__file__).resolve().parent.parent
BENCHMARK_NETWORK = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544, section C.2.2
SCENARIOS = ("laptop", "laptop+net", "vm-local", "vm")
SCENARIO_LABELS = {
    "laptop": "laptop: every core, direct",
    "laptop+net": "laptop + network delay",
    "vm-local": "VM: 1 CPU, no network delay",
    "vm": "VM: 1 CPU + network delay",
}


class HostingUnavailable(RuntimeError):
    """The simulated VM cannot be made on this machine; the message says why."""


# --- what the simulated VM is -------------------------------------------------------------

@dataclass(frozen=True)
class VmSpec:
    """A small droplet: one vCPU and 2 GB (DigitalOcean's "Basic" 1 vCPU / 2 GB size), reached
    over a veth pair from 198.18.0.0/15."""
    name: str = "labvm"  # the namespace, the cgroups and the host end of the veth pair
    host_address: str = "198.18.0.1"
    vm_address: str = "198.18.0.2"
    prefix_length: int = 30
    cpus: float = 1.0
    cpu_period_us: int = 100_000  # the CFS period; quota = cpus x period
    memory_bytes: int = 2 * 2**30

    def __post_init__(self):
        for address in (self.host_address, self.vm_address):
            if ipaddress.ip_address(address) not in BENCHMARK_NETWORK:
                raise ValueError(f"{address} is outside {BENCHMARK_NETWORK}, the range the "
                                 f"lab keeps to for its own namespaces")
        if len(self.host_veth) > 15:  # IFNAMSIZ - 1
            raise ValueError(f"name {self.name!r} is too long for an interface name")
        if self.cpus <= 0 or self.memory_bytes < 64 * 2**20:
            raise ValueError("the VM needs some CPU and at least 64 MB")

    @property
    def host_veth(self) -> str:
        return f"{self.name}-h"

    @property
    def vm_veth(self) -> str:
        return f"{self.name}-v"  # renamed to eth0 inside the namespace

    @property
    def cpu_quota_us(self) -> int:
        return int(round(self.cpus * self.cpu_period_us))


@dataclass(frozen=True)
class NetworkPath:
    """One-way delay and jitter in each direction (a 40 ms round trip by default: a laptop in
    Europe to a droplet in another European region, or across the US)."""
    one_way_ms: float = 20.0
    jitter_ms: float = 5.0

    @property
    def rtt_ms(self) -> float:
        return 2 * self.one_way_ms


# --- can it run here? ---------------------------------------------------------------------

def availability() -> str | None:
    """None when the simulated VM can be made here, else the reason it cannot."""
    if sys.platform != "linux":
        return "network namespaces and cgroups are Linux features"
    if os.geteuid() != 0:
        return ("creating a network namespace, a veth pair and cgroups needs root "
                f"(this process runs as uid {os.geteuid()})")
    if shutil.which("ip") is None:
        return "the `ip` command (Debian package iproute2) is not installed"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        return f"`ip netns` does not work here: {probe.stderr.strip()}"
    if Cgroups.layout() is None:
        return "no writable cgroup cpu and memory controllers (v1 or v2) under /sys/fs/cgroup"
    return None


def require_available() -> None:
    reason = availability()
    if reason:
        raise HostingUnavailable(reason)


def _run(argv, *, check=True, timeout=30) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in argv], capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise HostingUnavailable(f"{shlex.join(map(str, argv))} failed: "
                                 f"{(result.stderr or result.stdout).strip()}")
    return result


# --- cgroups: one CPU and a memory cap ------------------------------------------------------

class Cgroups:
    """A group of processes with its own CPU and memory accounting and, optionally, limits
    (None: no limit), created under this process's own cgroup in each hierarchy (so any limit
    this process is already under still applies), for cgroup v1 (cpu, cpuacct, memory
    hierarchies) or v2 (one unified hierarchy)."""

    ROOT = Path("/sys/fs/cgroup")

    def __init__(self, name: str, cpu_quota_us: int | None, cpu_period_us: int,
                 memory_bytes: int | None):
        self.name = name
        self.cpu_quota_us, self.cpu_period_us = cpu_quota_us, cpu_period_us
        self.memory_bytes = memory_bytes
        self.version = self.layout()
        self.dirs: dict[str, Path] = {}

    @classmethod
    def layout(cls) -> str | None:
        if (cls.ROOT / "cgroup.controllers").exists():
            controllers = (cls.ROOT / "cgroup.controllers").read_text().split()
            return "v2" if {"cpu", "memory"} <= set(controllers) else None
        if all((cls.ROOT / controller).is_dir() for controller in ("cpu", "memory")):
            return "v1"
        return None

    @staticmethod
    def _own_path(controller: str) -> str:
        """This process's cgroup in the hierarchy of `controller` ("" for v2's unified one)."""
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return path.lstrip("/")
        return ""

    def _hierarchies(self) -> dict[str, Path]:
        if self.version == "v2":
            return {"unified": self.ROOT / self._own_path("")}
        found = {}
        for controller in ("cpu", "cpuacct", "memory"):
            mount = self.ROOT / controller
            if mount.is_dir():
                found[controller] = mount / self._own_path(controller)
        # cpu and cpuacct are often one hierarchy mounted twice ("cpu,cpuacct")
        if "cpuacct" in found and found["cpuacct"].resolve() == found["cpu"].resolve():
            del found["cpuacct"]
        return found

    def create(self) -> "Cgroups":
        for key, parent in self._hierarchies().items():
            folder = parent / self.name
            if folder.exists():  # left by a run that was killed: empty it and start afresh
                self._empty(folder)
                folder.rmdir()
            folder.mkdir()
            self.dirs[key] = folder
        if self.version == "v2":
            (self.dirs["unified"].parent / "cgroup.subtree_control").write_text("+cpu +memory")
        self.set_limits(self.cpu_quota_us, self.memory_bytes)
        return self

    def set_limits(self, cpu_quota_us: int | None, memory_bytes: int | None) -> None:
        """Puts limits on the group, or lifts them (None), at any time: what its processes
        may use from the next scheduling period on."""
        self.cpu_quota_us, self.memory_bytes = cpu_quota_us, memory_bytes
        if self.version == "v2":
            folder = self.dirs["unified"]
            (folder / "cpu.max").write_text(f"{cpu_quota_us or 'max'} {self.cpu_period_us}")
            (folder / "memory.max").write_text(str(memory_bytes or "max"))
            if (folder / "memory.swap.max").exists():  # no swap, as on a droplet
                (folder / "memory.swap.max").write_text("0" if memory_bytes else "max")
        else:
            (self.dirs["cpu"] / "cpu.cfs_period_us").write_text(str(self.cpu_period_us))
            (self.dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(cpu_quota_us or -1))
            (self.dirs["memory"] / "memory.limit_in_bytes").write_text(str(memory_bytes or -1))

    def procs_files(self) -> list[Path]:
        return [folder / "cgroup.procs" for folder in self.dirs.values()]

    def enter_prefix(self) -> list[str]:
        """A command prefix that moves the command into every cgroup before it runs, so all
        it starts is born inside (a process cannot leave a cgroup by forking)."""
        moves = " && ".join(f"echo $$ > {shlex.quote(str(path))}"
                            for path in self.procs_files())
        return ["sh", "-c", f'{moves} && exec "$@"', "enter-cgroup"]

    def pids(self) -> set[int]:
        pids = set()
        for path in self.procs_files():
            try:
                pids.update(int(pid) for pid in path.read_text().split())
            except FileNotFoundError:
                pass
        return pids

    def usage(self) -> dict:
        """CPU time used, how often the quota stopped it, and the peak memory, so far."""
        read = lambda path: path.read_text().strip() if path.exists() else None  # noqa: E731
        if self.version == "v2":
            folder = self.dirs["unified"]
            stat = dict(line.split() for line in read(folder / "cpu.stat").splitlines())
            peak = read(folder / "memory.peak")
            events = dict(line.split() for line in (read(folder / "memory.events") or
                                                    "").splitlines())
            return {"cpu_s": int(stat["usage_usec"]) / 1e6,
                    "periods": int(stat.get("nr_periods", 0)),
                    "throttled_periods": int(stat.get("nr_throttled", 0)),
                    "throttled_s": int(stat.get("throttled_usec", 0)) / 1e6,
                    "memory_peak_bytes": int(peak) if peak else None,
                    "oom_kills": int(events.get("oom_kill", 0))}
        stat = dict(line.split() for line in read(self.dirs["cpu"] / "cpu.stat").splitlines())
        usage_dir = self.dirs.get("cpuacct", self.dirs["cpu"])
        oom = dict(line.split() for line in
                   read(self.dirs["memory"] / "memory.oom_control").splitlines())
        return {"cpu_s": int(read(usage_dir / "cpuacct.usage")) / 1e9,
                "periods": int(stat.get("nr_periods", 0)),
                "throttled_periods": int(stat.get("nr_throttled", 0)),
                "throttled_s": int(stat.get("throttled_time", 0)) / 1e9,
                "memory_peak_bytes": int(read(self.dirs["memory"] /
                                              "memory.max_usage_in_bytes")),
                "oom_kills": int(oom.get("oom_kill", 0))}

    @staticmethod
    def _empty(folder: Path, timeout: float = 10.0) -> None:
        """SIGKILLs every process left in a cgroup and waits until it is empty."""
        procs = folder / "cgroup.procs"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = [int(pid) for pid in procs.read_text().split()] if procs.exists() else []
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"processes still in {folder} after {timeout:g} s")

    def remove(self) -> None:
        errors = []
        for folder in self.dirs.values():
            try:
                if folder.exists():
                    self._empty(folder)
                    folder.rmdir()
            except OSError as error:
                errors.append(f"{folder}: {error}")
        self.dirs = {}
        if errors:
            raise RuntimeError("could not remove cgroups: " + "; ".join(errors))


# --- the simulated VM ----------------------------------------------------------------------

class SimulatedVm:
    """A network namespace with its own loopback and an eth0 at `spec.vm_address`, the host end
    of the veth pair at `spec.host_address`, and the cgroups every process run in it joins.

        with SimulatedVm(VmSpec()) as vm:
            vm.run(["python", "-m", "http.server", "8000"], log_path=...)
    """

    def __init__(self, spec: VmSpec | None = None, *, progress=print):
        self.spec = spec or VmSpec()
        self.cgroups = Cgroups(self.spec.name, self.spec.cpu_quota_us, self.spec.cpu_period_us,
                               self.spec.memory_bytes)
        self._progress = progress or (lambda *args: None)
        self._processes: list[subprocess.Popen] = []

    def __enter__(self) -> "SimulatedVm":
        require_available()
        spec = self.spec
        if spec.name in namespaces():
            self._progress(f"removing a namespace {spec.name} left by an earlier run")
            self._delete_network()
        try:
            self._create_network()
            self.cgroups.create()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self._progress(
            f"simulated VM {spec.name}: {spec.vm_address} (host side {spec.host_address}), "
            f"{spec.cpus:g} CPU (cgroup {self.cgroups.version} quota "
            f"{spec.cpu_quota_us} us per {spec.cpu_period_us} us), "
            f"{spec.memory_bytes / 2**30:g} GB memory cap")
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        problems = []
        for step in (self._stop_processes, self.cgroups.remove, self._delete_network):
            try:
                step()
            except Exception as error:  # go on with the other steps, report at the end
                problems.append(f"{step.__name__}: {error}")
        left = leftovers(self.spec)
        if problems or left:
            message = (f"tearing down {self.spec.name} left something behind: "
                       f"{'; '.join(problems + left)}")
            if exc_type is None:
                raise RuntimeError(message)
            self._progress(message)  # and let the original error through
            return
        self._progress(f"simulated VM {self.spec.name} removed: no namespace, veth pair, "
                       f"cgroup or process left")

    # network
    def _create_network(self) -> None:
        spec = self.spec
        cidr = f"/{spec.prefix_length}"
        for argv in (
            ["ip", "netns", "add", spec.name],
            ["ip", "link", "add", spec.host_veth, "type", "veth", "peer", "name", spec.vm_veth],
            ["ip", "link", "set", spec.vm_veth, "netns", spec.name],
            ["ip", "-n", spec.name, "link", "set", spec.vm_veth, "name", "eth0"],
            ["ip", "addr", "add", spec.host_address + cidr, "dev", spec.host_veth],
            ["ip", "-n", spec.name, "addr", "add", spec.vm_address + cidr, "dev", "eth0"],
            ["ip", "link", "set", spec.host_veth, "up"],
            ["ip", "-n", spec.name, "link", "set", "eth0", "up"],
            ["ip", "-n", spec.name, "link", "set", "lo", "up"],
        ):
            _run(argv)

    def _delete_network(self) -> None:
        spec = self.spec
        if spec.name in namespaces():
            for pid in _namespace_pids(spec.name):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        # Deleting either end of a veth pair deletes both; the namespace takes its end along.
        if _link_exists(spec.host_veth):
            _run(["ip", "link", "delete", spec.host_veth])
        if spec.name in namespaces():
            _run(["ip", "netns", "delete", spec.name])

    # processes
    def command(self, argv: list[str]) -> list[str]:
        """`argv` as it must be started to run inside the VM (namespace and cgroups)."""
        return [*self.cgroups.enter_prefix(), "ip", "netns", "exec", self.spec.name,
                *map(str, argv)]

    def run(self, argv: list[str], *, log_path: Path, env: dict | None = None,
            cwd: Path = REPO_DIR) -> subprocess.Popen:
        """Starts `argv` inside the VM in the background (its own session), output to
        `log_path`; it is killed, with all it started, when the VM is torn down."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            process = subprocess.Popen(self.command(argv), stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                       start_new_session=True)
        self._processes.append(process)
        return process

    def _stop_processes(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._processes.clear()

    def limit(self, on: bool = True) -> None:
        """Holds the VM to its one CPU and memory cap (on), or lifts both (off): the same
        processes then have every core of this machine, as the stack has on the laptop."""
        spec = self.spec
        self.cgroups.set_limits(spec.cpu_quota_us if on else None,
                                spec.memory_bytes if on else None)

    @property
    def limited(self) -> bool:
        return self.cgroups.cpu_quota_us is not None

    def usage(self) -> dict:
        return self.cgroups.usage()


def namespaces() -> list[str]:
    result = _run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def _namespace_pids(name: str) -> list[int]:
    result = _run(["ip", "netns", "pids", name], check=False)
    return [int(pid) for pid in result.stdout.split()]


def _link_exists(name: str) -> bool:
    return _run(["ip", "link", "show", name], check=False).returncode == 0


def leftovers(spec: VmSpec | None = None) -> list[str]:
    """What is left of a simulated VM: [] when the namespace, the veth pair, the cgroups and
    so their processes are all gone (the notebook shows this after the experiment)."""
    spec = spec or VmSpec()
    found = []
    if spec.name in namespaces():
        found.append(f"namespace {spec.name} (pids {_namespace_pids(spec.name)})")
    for link in (spec.host_veth, spec.vm_veth):
        if _link_exists(link):
            found.append(f"link {link}")
    probe = Cgroups(spec.name, None, 1, None)
    if probe.version:
        for parent in probe._hierarchies().values():
            if (parent / spec.name).exists():
                found.append(f"cgroup {parent / spec.name}")
    return found


# --- the network path: netem where the kernel has it, else the relay --------------------------

def netem_available(spec: VmSpec) -> bool:
    """Whether `tc ... netem` works on the VM's veth pair (tried on it, then removed)."""
    if shutil.which("tc") is None:
        return False
    probe = _run(["tc", "qdisc", "add", "dev", spec.host_veth, "root", "netem", "delay",
                  "1ms"], check=False)
    if probe.returncode != 0:
        return False
    _run(["tc", "qdisc", "del", "dev", spec.host_veth, "root"], check=False)
    return True


def netem_commands(spec: VmSpec, path: NetworkPath) -> tuple[list[list[str]], list[list[str]]]:
    """(add, remove) commands: one-way delay with jitter on each end of the veth pair, so each
    direction is delayed once. https://man7.org/linux/man-pages/man8/tc-netem.8.html"""
    delay = ["netem", "delay", f"{path.one_way_ms:g}ms", f"{path.jitter_ms:g}ms",
             "distribution", "normal"]
    add = [["tc", "qdisc", "add", "dev", spec.host_veth, "root", *delay],
           ["ip", "netns", "exec", spec.name, "tc", "qdisc", "add", "dev", "eth0", "root",
            *delay]]
    remove = [["tc", "qdisc", "del", "dev", spec.host_veth, "root"],
              ["ip", "netns", "exec", spec.name, "tc", "qdisc", "del", "dev", "eth0", "root"]]
    return add, remove


@dataclass
class Relay:
    url: str
    process: subprocess.Popen

    def cpu_s(self) -> float:
        """CPU seconds the relay has used so far (user + system)."""
        import psutil

        try:
            times = psutil.Process(self.process.pid).cpu_times()
        except psutil.Error:
            return float("nan")
        return times.user + times.system


@contextmanager
def relay_process(target: tuple[str, int], path: NetworkPath, log_path: Path,
                  *, seed: int = 9, max_seconds: float = 3600):
    """lab.hosting_relay as a process on 127.0.0.1 (its own CPU, stopped by pid); yields a
    Relay (its base URL and process). `max_seconds` bounds its life even if this process
    dies."""
    from .loadtest import free_port

    port = free_port()
    argv = [sys.executable, "-m", "lab.hosting_relay", "--listen", f"127.0.0.1:{port}",
            "--target", f"{target[0]}:{target[1]}", "--delay-ms", f"{path.one_way_ms:g}",
            "--jitter-ms", f"{path.jitter_ms:g}", "--seed", str(seed),
            "--max-seconds", f"{max_seconds:g}"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_DIR,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the relay exited with {process.returncode}: "
                                   f"{log_path.read_text()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the relay did not listen within 10 s")
                time.sleep(0.05)
        yield Relay(f"http://127.0.0.1:{port}", process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


# --- what the path adds: round trips measured -------------------------------------------------

# A request HAProxy answers itself, without an app instance: its web frontend refuses the
# internal entity API's paths with a 403 (infra/haproxy/haproxy.cfg). Timing it measures the
# network path and HAProxy, not Django, so a busy VM does not blur the round trip.
PROBE_PATH, PROBE_STATUS = "/entity/rtt-probe", 403


def _http_get_ms(connection: http.client.HTTPConnection, path: str, status: int) -> float:
    started = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    if response.status != status:
        raise RuntimeError(f"GET {path} answered {response.status}, not {status}")
    return (time.perf_counter() - started) * 1000


def measure_rtt(urls: dict[str, str], *, samples: int = 40, path: str = PROBE_PATH,
                status: int = PROBE_STATUS, timeout: float = 5.0) -> pd.DataFrame:
    """Times `GET path` against each base URL, `samples` times each, interleaved so that any
    drift affects every URL alike, two ways: on one kept-alive connection (one round trip per
    request) and on a new connection each time (the handshake's round trip too).
    Returns one row per request: url_name, connection (kept-alive | new), ms."""
    rows = []
    parsed = {name: urlsplit(url) for name, url in urls.items()}
    alive = {name: http.client.HTTPConnection(part.hostname, part.port, timeout=timeout)
             for name, part in parsed.items()}
    try:
        for name in urls:  # the first request of a connection is not a kept-alive one
            _http_get_ms(alive[name], path, status)
        for _ in range(samples):
            for name, part in parsed.items():
                rows.append((name, "kept-alive", _http_get_ms(alive[name], path, status)))
                fresh = http.client.HTTPConnection(part.hostname, part.port, timeout=timeout)
                try:
                    rows.append((name, "new", _http_get_ms(fresh, path, status)))
                finally:
                    fresh.close()
    finally:
        for connection in alive.values():
            connection.close()
    return pd.DataFrame(rows, columns=["url_name", "connection", "ms"])


def rtt_summary(samples: pd.DataFrame, *, baseline: str) -> pd.DataFrame:
    """Median and p90 per URL and connection kind, and what each adds over `baseline`."""
    table = (samples.groupby(["connection", "url_name"])["ms"]
             .agg(median_ms="median", p90_ms=lambda ms: ms.quantile(0.9), samples="count")
             .reset_index())
    base = table[table["url_name"] == baseline].set_index("connection")["median_ms"]
    table["added_median_ms"] = table["median_ms"] - table["connection"].map(base)
    return table


def rtt_table(rtt: pd.DataFrame) -> pd.DataFrame:
    """`compare`'s round-trip samples summarised: the stack reached through the delayed path
    against the same stack reached directly over the veth pair, per connection kind."""
    if rtt.empty:
        return pd.DataFrame()
    table = rtt_summary(rtt, baseline="direct")
    return table[["connection", "url_name", "samples", "median_ms", "p90_ms",
                  "added_median_ms"]]


def added_rtt_ms(rtt: pd.DataFrame, connection: str = "kept-alive") -> float:
    """The round trip the delayed path adds (the difference of the medians), on a kept-alive
    connection by default; nan when no delayed scenario ran."""
    table = rtt_table(rtt)
    if table.empty:
        return float("nan")
    delayed = table[(table["connection"] == connection) & (table["url_name"] == "delayed")]
    return float(delayed["added_median_ms"].iloc[0]) if len(delayed) else float("nan")


# --- the experiment ---------------------------------------------------------------------------

# What each scenario changes, as (held to the VM's one CPU and memory cap, through the
# delayed network path): the two factors of the 2x2 design.
FACTORS = {"laptop": (False, False), "laptop+net": (False, True),
           "vm-local": (True, False), "vm": (True, True)}
# The order the scenarios run in: each neighbour differs in one factor, so three of the four
# differences the effects table takes are between runs next to each other in time, when
# other work on the machine is most alike. Both CPU effects are among them.
RUN_ORDER = ("laptop", "vm-local", "vm", "laptop+net")


@dataclass
class HostingComparison:
    """What `compare` measured: one row per scenario, round and load step in `steps` (with the
    cores the stack really used and the share of CPU periods the quota stopped it in, per
    step), the round-trip samples in `rtt`, and per locust run (`runs`, keyed by run name) the
    CPU the stack used, the VM's cgroup counters, the relay's and the generator's CPU."""
    steps: pd.DataFrame
    rtt: pd.DataFrame
    runs: dict = field(default_factory=dict)
    path_method: str = ""
    spec: dict = field(default_factory=dict)
    network: dict = field(default_factory=dict)
    out_dir: Path | None = None
    stack_start_s: float | None = None

    def save(self) -> None:
        self.steps.to_csv(self.out_dir / "hosting_steps.csv", index=False)
        self.rtt.to_csv(self.out_dir / "hosting_rtt.csv", index=False)
        (self.out_dir / "hosting.json").write_text(json.dumps(
            {"runs": self.runs, "path_method": self.path_method, "spec": self.spec,
             "network": self.network, "stack_start_s": self.stack_start_s},
            indent=2, default=str))

    @classmethod
    def load(cls, out_dir) -> "HostingComparison":
        """A comparison saved by an earlier `compare` (for the write-up, without re-running)."""
        out_dir = Path(out_dir)
        meta = json.loads((out_dir / "hosting.json").read_text())
        try:
            rtt = pd.read_csv(out_dir / "hosting_rtt.csv")
        except pd.errors.EmptyDataError:  # no delayed scenario ran
            rtt = pd.DataFrame()
        return cls(steps=pd.read_csv(out_dir / "hosting_steps.csv"), rtt=rtt,
                   out_dir=out_dir, **meta)


def _usage_delta(before: dict, after: dict) -> dict:
    delta = {key: after[key] - before[key] for key in ("cpu_s", "periods",
                                                        "throttled_periods", "throttled_s",
                                                        "oom_kills")}
    delta["memory_peak_bytes"] = after["memory_peak_bytes"]
    return delta


class UsageSampler:
    """Reads a group's CPU counters every `interval` seconds in a background thread while a
    load test runs, so each load step can say how many cores the stack got and how often the
    quota stopped it (the run's totals alone cannot tell the light steps from the heavy)."""

    COLUMNS = ["epoch", "cpu_s", "periods", "throttled_periods"]

    def __init__(self, group, interval: float = 0.5):
        self.group, self.interval = group, interval
        self.samples: list[tuple] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        usage = self.group.usage()
        self.samples.append((time.time(), usage["cpu_s"], usage["periods"],
                             usage["throttled_periods"]))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "UsageSampler":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.samples, columns=self.COLUMNS)


def step_usage(steps: pd.DataFrame, samples: pd.DataFrame, t0_epoch: float) -> pd.DataFrame:
    """`steps` (lab.loadstats.step_summary's rows, whose windows are seconds since t0_epoch)
    with the stack's CPU in each step's window, from cumulative counters sampled over time
    (interpolated at the window's ends): stack_cores (CPU seconds per second: 1.0 is one
    core fully busy) and throttled_share (the share of the scheduling periods in which the
    quota stopped the group; 0 where there is no quota)."""
    steps = steps.copy()
    if len(samples) < 2:
        steps["stack_cores"] = steps["throttled_share"] = float("nan")
        return steps
    t = (samples["epoch"] - t0_epoch).to_numpy()

    def at(column, when):
        return np.interp(when, t, samples[column].to_numpy(dtype=float))

    start, end = steps["window_start_s"].to_numpy(), steps["window_end_s"].to_numpy()
    cpu = at("cpu_s", end) - at("cpu_s", start)
    periods = at("periods", end) - at("periods", start)
    throttled = at("throttled_periods", end) - at("throttled_periods", start)
    steps["stack_cores"] = cpu / np.maximum(end - start, 1e-9)
    steps["throttled_share"] = np.where(periods > 0, throttled / np.maximum(periods, 1), 0.0)
    return steps


def _locust(out_dir, name, url, shape, think_time, run_dir, group):
    """One run of the perf tooling's locust experiment (lab.loadtest.run_locust), with the
    machine's load average around it (other work on this machine shows up there) and the
    group's CPU counters sampled throughout.

    Every run shares one discovery file (LOAD_SITE_FILE): the first run reads listing ids and
    usernames from the site's pages, the others reuse them, so no run but the first pays for
    a burst of uncached search pages before its measurement starts (on one busy CPU that can
    time out)."""
    from . import loadtest

    load_before = os.getloadavg()
    before = group.usage()
    with UsageSampler(group) as sampler:
        run = loadtest.run_locust(out_dir, name, url, shape, think_time=think_time,
                                  run_dir=run_dir,
                                  env={"LOAD_SITE_FILE": str(Path(out_dir) / "site.json")})
    usage = _usage_delta(before, group.usage())
    samples = sampler.frame()
    samples.to_csv(Path(out_dir) / f"{name}_stack_cpu.csv", index=False)
    steps = step_usage(run.steps(), samples, run.meta["t0_epoch"])
    requests = run.requests()
    return steps, usage, {
        "returncode": run.returncode, "wall_s": run.wall_s,
        "requests_total": int(len(requests)),
        "failures_total": int((~requests["ok"].astype(bool)).sum()),
        "generator": run.generator(), "prefix": str(run.prefix),
        "loadavg_1m_before": load_before[0], "loadavg_1m_after": os.getloadavg()[0]}


def _stack_config(config, *, run_dir: Path, sqlite_path: Path, port_offset: int = 0,
                  allowed_hosts: str | None = None, startup_timeout: float = 180.0):
    """`config` with its own state, database and (for the VM) host names. A stack on a
    machine that may be busy starts several times slower than `make up`: each start-up step
    may take `startup_timeout` seconds."""
    extra = dict(config.extra_env)
    if allowed_hosts:
        extra["LAB_ALLOWED_HOSTS"] = allowed_hosts
    return config.replace(run_dir=run_dir, sqlite_path=sqlite_path, port_offset=port_offset,
                          extra_env=extra,
                          startup_timeout=max(config.startup_timeout, startup_timeout))


@contextmanager
def vm_stack(vm: SimulatedVm, config, *, log_path: Path, timeout: float = 600):
    """The stack started inside the VM by lab/hosting_vm.py, so that every process of it is
    born in the VM's namespace and cgroups; yields the infra.Stack that describes it (its
    pids are this machine's pids, so it is stopped from here)."""
    from infra import Stack

    argv = [sys.executable, "-m", "lab.hosting_vm", "--public-web", "--config-json",
            json.dumps(config.to_json())]
    process = vm.run(argv, log_path=log_path)
    stack = Stack(config, progress=lambda *args: None)
    try:
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the stack did not come up within {timeout:.0f} s "
                               f"({log_path})")
        if returncode != 0:
            raise RuntimeError(f"the stack did not start (exit {returncode}):\n"
                               f"{log_path.read_text(errors='replace')[-3000:]}")
        yield stack
    finally:
        stack.down(quiet=True)


def empty_page_cache(vm: SimulatedVm, stack) -> None:
    """Empties the stack's Redis (the page cache lives nowhere else), from inside the VM where
    it listens, so that every run starts from the same cold cache whatever ran before it.
    The password goes in the environment, not on a command line."""
    result = subprocess.run(
        vm.command(["redis-cli", "-h", "127.0.0.1", "-p", str(stack.config.redis_port),
                    "FLUSHALL"]),
        env={**os.environ, "REDISCLI_AUTH": stack.credentials.redis_password},
        capture_output=True, text=True, timeout=30)
    if result.returncode != 0 or result.stdout.strip() != "OK":
        raise RuntimeError(f"emptying the page cache failed: "
                           f"{(result.stderr or result.stdout).strip()}")


@contextmanager
def _netem(spec: VmSpec, network: NetworkPath):
    add, remove = netem_commands(spec, network)
    try:
        for argv in add:
            _run(argv)
        yield
    finally:
        for argv in remove:
            _run(argv, check=False)


def compare(out_dir, *, config=None, shape=None, think_time=(0.5, 1.5),
            network: NetworkPath = NetworkPath(), spec: VmSpec = VmSpec(),
            scenarios=SCENARIOS, rounds: int = 1, rtt_samples: int = 15,
            path_method: str = "auto", database=None, run_dir=None,
            progress=print) -> HostingComparison:
    """Runs the same locust step load against each scenario (see the module docstring) and
    returns the per-step results, the measured round trips and what each run cost.

    One stack runs in the VM for the whole experiment; before each run the VM's limits are put
    on (vm, vm-local) or lifted (laptop, laptop+net) and the page cache is emptied, and the
    delayed path (a relay, or netem) is used or not. The scenarios run one after the other
    (in RUN_ORDER), `rounds` times, each round in a rotated order: whatever else this machine
    is doing at the time then weighs on every scenario alike (the tables take the median over
    rounds).

    `config` is the infra.StackConfig of the stack (default: `make up`'s, 2 instances per
    tier, the deployment's default too); `shape` the lab.traffic.StepLoad (default: 40 to 120
    users in steps of 40, 9 s each); `think_time` the visitors' pause between pages, in
    seconds; `rtt_samples` the requests timed on each path and connection kind; `database` a
    seeded SQLite file the stack starts from a copy of (lab.stacks.pristine_database; default:
    the stack migrates and seeds its own, which costs seconds on a busy machine). Raises
    HostingUnavailable, before starting anything, when the VM cannot be made here (no root,
    no `ip netns`, no cgroups)."""
    from contextlib import ExitStack, nullcontext

    from infra import StackConfig

    from .traffic import StepLoad

    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenarios {sorted(unknown)}; known: {SCENARIOS}")
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    order = [name for name in RUN_ORDER if name in scenarios]
    require_available()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = config or StackConfig()
    shape = shape or StepLoad(step_users=40, step_seconds=9, max_users=120, warmup_seconds=4.5)
    progress = progress or (lambda *args: None)
    frames, runs, rtt = [], {}, pd.DataFrame()
    method, relay = "", None

    sqlite_path = out_dir / "marketplace.sqlite3"
    for suffix in ("", "-wal", "-shm"):  # an earlier run's database is not this run's
        sqlite_path.with_name(sqlite_path.name + suffix).unlink(missing_ok=True)
    if database is not None:
        shutil.copy2(database, sqlite_path)

    with ExitStack() as resources:  # closed in reverse: the relay, the stack, the VM
        stack_config = _stack_config(config, run_dir=out_dir / "stack", sqlite_path=sqlite_path,
                                     allowed_hosts=f"127.0.0.1,localhost,{spec.vm_address}")
        vm = resources.enter_context(SimulatedVm(spec, progress=progress))
        vm.limit(False)  # start-up is not what is measured: it may use every core
        progress("starting the stack inside the VM")
        started = time.monotonic()
        stack = resources.enter_context(vm_stack(vm, stack_config,
                                                 log_path=out_dir / "stack-up.log"))
        stack_start_s = round(time.monotonic() - started, 1)
        direct = f"http://{spec.vm_address}:{stack_config.frontend_port('web')}"
        urls = {False: direct}
        if any(FACTORS[name][1] for name in order):
            method = path_method
            if method == "auto":
                method = "netem" if netem_available(spec) else "relay"
            progress(f"the network path is made with {method}")
            if method == "relay":
                relay = resources.enter_context(relay_process(
                    (spec.vm_address, stack_config.frontend_port("web")), network,
                    out_dir / "relay.log"))
                urls[True] = relay.url
                # What the delayed path adds, against the direct one, interleaved.
                rtt = measure_rtt({"direct": direct, "delayed": relay.url},
                                  samples=rtt_samples)
            else:  # one URL, with and without the qdisc
                urls[True] = direct
                parts = [measure_rtt({"direct": direct}, samples=rtt_samples)]
                with _netem(spec, network):
                    parts.append(measure_rtt({"delayed": direct}, samples=rtt_samples))
                rtt = pd.concat(parts, ignore_index=True)

        for number in range(1, rounds + 1):
            shift = (number - 1) % len(order)
            for name in order[shift:] + order[:shift]:
                one_cpu, delayed = FACTORS[name]
                run_name = name if rounds == 1 else f"{name}-r{number}"
                progress(f"round {number}/{rounds}, {name}: locust against {urls[delayed]}")
                vm.limit(one_cpu)
                empty_page_cache(vm, stack)
                before_relay = relay.cpu_s() if delayed and relay else None
                with _netem(spec, network) if delayed and method == "netem" else nullcontext():
                    steps, usage, info = _locust(out_dir, run_name, urls[delayed], shape,
                                                 think_time, run_dir, vm)
                info["stack_cpu_s"] = usage["cpu_s"]
                if one_cpu:
                    info["vm"] = usage
                if before_relay is not None:
                    info["relay_cpu_s"] = relay.cpu_s() - before_relay
                info.update(scenario=name, round=number)
                runs[run_name] = info
                steps.insert(0, "round", number)
                steps.insert(0, "scenario", name)
                frames.append(steps)
    progress("after the experiment: " + (", ".join(leftovers(spec))
                                          or "no namespace, veth pair, cgroup or process of "
                                             "the VM is left"))
    result = HostingComparison(
        steps=pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(),
        rtt=rtt, runs=runs, path_method=method, spec=asdict(spec), network=asdict(network),
        out_dir=out_dir, stack_start_s=stack_start_s)
    result.save()
    return result


def _request_totals(info: dict) -> tuple[int, int]:
    """(requests, failures) of a whole locust run, warm-up included: what the stack's CPU
    counters cover. Older saved runs kept only the request log, so it is read when needed."""
    if "requests_total" in info:
        return info["requests_total"], info["failures_total"]
    requests = pd.read_csv(f"{info['prefix']}_requests.csv")
    return len(requests), int((~requests["ok"].astype(bool)).sum())


def resources_table(result: HostingComparison) -> pd.DataFrame:
    """Per locust run: how many cores the stack really used on average (CPU seconds over the
    run's wall time), the CPU time one request cost (its service demand: CPU seconds over
    every request of the run) and so how many requests per second one fully used CPU could
    serve, how often the VM's quota stopped it, its peak memory (cgroup: includes the page
    cache of the files it read), and the relay's and the generator's CPU.

    A stack that used well under the cores it may use, while its latency grew, was short of
    CPU because of other work on this machine, not because of its own limit."""
    rows = []
    for name, info in result.runs.items():
        vm_usage = info.get("vm") or {}
        periods = vm_usage.get("periods") or 0
        requests, failures = _request_totals(info)
        demand_ms = 1000 * info["stack_cpu_s"] / requests if requests else float("nan")
        rows.append({
            "run": name, "scenario": info["scenario"], "round": info["round"],
            "wall_s": info["wall_s"], "requests": requests,
            "failure_rate": failures / requests if requests else float("nan"),
            "stack_cores_used": info["stack_cpu_s"] / info["wall_s"],
            "cpu_ms_per_request": demand_ms,
            "one_cpu_capacity_rps": 1000 / demand_ms if demand_ms else float("nan"),
            "vm_throttled_share": (vm_usage["throttled_periods"] / periods
                                   if periods else float("nan")),
            "vm_memory_peak_mb": (vm_usage["memory_peak_bytes"] / 2**20
                                  if vm_usage else float("nan")),
            "vm_oom_kills": vm_usage.get("oom_kills", float("nan")),
            "relay_cpu_s": info.get("relay_cpu_s", float("nan")),
            "generator_cpu_pct": info["generator"]["generator_cpu_mean_pct"],
            "generator_saturated": info["generator"]["generator_saturated"],
            "loadavg_1m_before": info["loadavg_1m_before"],
        })
    return pd.DataFrame(rows)


def findings(result: HostingComparison, *, max_failure_rate: float = 0.05) -> dict:
    """The figures the write-up states, computed from the run: the round trip the path added,
    the CPU one request costs and what one CPU could therefore serve, how much CPU the stack
    really got with and without the VM's limits, and whether the VM's one-CPU limit was what
    held it back (it used all of it, and its quota stopped it in a fair share of periods) or
    other work on this machine was.

    The `top_*` figures are those of the highest load step every scenario ran, for the laptop
    and the VM reached directly (`laptop`, `vm-local`: the CPU's effect alone) where they ran,
    else through the delayed path: the cores each stack used there (median over rounds), how
    busy the whole machine was while the laptop's ran, and the load generator's share of one
    core."""
    resources = resources_table(result)
    clean = resources[resources["failure_rate"] <= max_failure_rate]
    demand = float(clean["cpu_ms_per_request"].median()) if len(clean) else float("nan")
    is_vm = resources["scenario"].map(lambda name: FACTORS[name][0])
    vm_runs, laptop_runs = resources[is_vm], resources[~is_vm]
    cpus = float(result.spec.get("cpus", VmSpec.cpus))
    nan = float("nan")
    found = {
        "rtt_added_ms": added_rtt_ms(result.rtt),
        "rtt_added_new_connection_ms": added_rtt_ms(result.rtt, "new"),
        "cpu_ms_per_request": demand,
        "one_cpu_capacity_rps": 1000 / demand if demand else nan,
        "vm_cpus": cpus,
        "laptop_cores_used_mean": float(laptop_runs["stack_cores_used"].mean())
        if len(laptop_runs) else nan,
        "vm_cores_used_mean": float(vm_runs["stack_cores_used"].mean()) if len(vm_runs)
        else nan,
        "machine_loadavg_mean": float(resources["loadavg_1m_before"].mean()),
        "cores_on_this_machine": os.cpu_count(),
        "vm_memory_peak_mb": float(vm_runs["vm_memory_peak_mb"].max()) if len(vm_runs)
        else nan,
    }
    steps = result.steps
    per_step = "stack_cores" in steps and "throttled_share" in steps
    vm_steps = (by_scenario(steps[steps["scenario"].map(lambda name: FACTORS[name][0])])
                if per_step else pd.DataFrame())
    # The quota bound if it stopped the VM in at least a tenth of the periods of a load step;
    # the VM was saturated if, in a step, it used at least 90 % of the CPU it may use.
    throttled = float(vm_steps["throttled_share"].max()) if len(vm_steps) else (
        float(vm_runs["vm_throttled_share"].max()) if len(vm_runs) else nan)
    found["vm_throttled_share_max"] = throttled
    found["vm_cpu_limit_was_binding"] = bool(throttled >= 0.10)
    found["vm_saturated"] = bool(len(vm_steps)
                                 and (vm_steps["stack_cores"] >= 0.9 * cpus).any())
    found["vm_saturated_from_users"] = (
        int(vm_steps.loc[vm_steps["stack_cores"] >= 0.9 * cpus, "users"].min())
        if found["vm_saturated"] else None)
    if per_step and len(steps):
        table = by_scenario(steps)
        top = int(table.groupby("scenario")["users"].max().min())
        at_top = table[table["users"] == top].set_index("scenario")
        laptop = next(name for name in ("laptop", "laptop+net", "vm-local", "vm")
                      if name in at_top.index)
        vm = next(name for name in ("vm-local", "vm", "laptop", "laptop+net")
                  if name in at_top.index)
        found.update({
            "top_users": top, "top_laptop_scenario": laptop, "top_vm_scenario": vm,
            "top_laptop_cores": float(at_top.at[laptop, "stack_cores"]),
            "top_vm_cores": float(at_top.at[vm, "stack_cores"]),
            "top_vm_throttled_share": float(at_top.at[vm, "throttled_share"]),
            "top_laptop_machine_cpu_pct": float(at_top.at[laptop, "machine_cpu_pct"]),
            "top_vm_machine_cpu_pct": float(at_top.at[vm, "machine_cpu_pct"]),
            "top_generator_cpu_pct": float(at_top.at[laptop, "generator_cpu_pct"]),
        })
        # What the laptop could still have had: every core of this machine, less what the
        # rest of the machine used while the laptop's stack ran its top step.
        busy_cores = (found["top_laptop_machine_cpu_pct"] / 100 * (os.cpu_count() or 1))
        found["top_laptop_cores_left"] = (os.cpu_count() or 1) - busy_cores
        found["top_other_cores"] = busy_cores - found["top_laptop_cores"]
    return found


# --- analysis -----------------------------------------------------------------------------------

# Per-step figures of what the machine did, where the run recorded them: the cores the stack
# used, the share of periods the VM's quota stopped it in, the generator's CPU (100 = one core)
# and the whole machine's (100 = every core busy).
CPU_COLUMNS = ("stack_cores", "throttled_share", "generator_cpu_pct", "machine_cpu_pct")


def by_scenario(steps: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario and load step: the median over rounds of throughput, each
    percentile and each CPU figure, the requests and failures summed, and how many rounds
    there were."""
    steps = steps if "round" in steps else steps.assign(round=1)
    grouped = steps.groupby(["scenario", "users"])
    medians = ["rps", "p50_ms", "p95_ms", "p99_ms",
               *[column for column in CPU_COLUMNS if column in steps]]
    table = grouped[medians].median()
    table[["requests", "failures"]] = grouped[["requests", "failures"]].sum()
    table["rounds"] = grouped["round"].nunique()
    return table.reset_index()


def comparison_table(steps: pd.DataFrame, *, users: int | None = None) -> pd.DataFrame:
    """One row per scenario at one load step (the highest by default, the same for every
    scenario): throughput and latency percentiles (medians over rounds), the ratio of each to
    the laptop's, and, where recorded, the cores the stack used in that step and the share of
    periods the VM's quota stopped it in."""
    steps = by_scenario(steps)
    level = users if users is not None else int(steps.groupby("scenario")["users"].max().min())
    rows = steps[steps["users"] == level].set_index("scenario")
    order = [name for name in SCENARIOS if name in rows.index]
    table = rows.loc[order, ["users", "rounds", "requests", "failures", "rps", "p50_ms",
                             "p95_ms", "p99_ms"]].copy()
    if "laptop" in table.index:
        for column in ("rps", "p50_ms", "p95_ms"):
            table[f"{column.removesuffix('_ms')}_vs_laptop"] = (table[column]
                                                               / table.at["laptop", column])
    for column in ("stack_cores", "throttled_share"):
        if column in rows:
            table[column] = rows.loc[order, column]
    table.insert(0, "description", [SCENARIO_LABELS[name] for name in table.index])
    return table.reset_index()


def effects(steps: pd.DataFrame, metrics=("p50_ms", "p95_ms", "rps")) -> pd.DataFrame:
    """The difference laptop -> VM split into what the network adds and what the one CPU takes
    away, per load step, as a 2x2 design: the network's effect measured on each machine, the
    CPU's effect with and without the network, and their interaction (what the two cost
    together beyond their sum; near zero when they simply add up)."""
    wide = by_scenario(steps).pivot_table(index="users", columns="scenario",
                                          values=list(metrics))
    rows = []
    for users in wide.index:
        for metric in metrics:
            value = {name: wide.at[users, (metric, name)] if (metric, name) in wide.columns
                     else float("nan") for name in SCENARIOS}
            rows.append({
                "users": int(users), "metric": metric,
                "laptop": value["laptop"], "vm": value["vm"],
                "total_change": value["vm"] - value["laptop"],
                "network_on_laptop": value["laptop+net"] - value["laptop"],
                "network_on_vm": value["vm"] - value["vm-local"],
                "cpu_without_network": value["vm-local"] - value["laptop"],
                "cpu_with_network": value["vm"] - value["laptop+net"],
                "interaction": (value["vm"] - value["vm-local"]
                                - value["laptop+net"] + value["laptop"]),
            })
    return pd.DataFrame(rows)


def narrative(result: HostingComparison, found: dict, effects_table: pd.DataFrame | None = None,
              *, short: bool = False) -> str:
    """What the comparison found, in words, every figure taken from the run (`found` is
    `findings(result)`, `effects_table` is `effects(result.steps)`): what the network path
    added, what one request costs in CPU, how much CPU each side really had at the top load
    step and why, and, when all four scenarios ran, the network's and the CPU's shares of
    the difference there. `short` leaves out the CPU accounting (for the write-up)."""
    ran = [name for name in SCENARIOS if name in set(result.steps["scenario"])]
    parts = []
    if not math.isnan(found["rtt_added_ms"]):
        parts.append(f"The network path ({result.path_method}) added "
                     f"**{found['rtt_added_ms']:.0f} ms** per round trip on a kept-alive "
                     f"connection and {found['rtt_added_new_connection_ms']:.0f} ms on a new "
                     f"one (measured).")
    parts.append(f"One request of this traffic mix cost about "
                 f"**{found['cpu_ms_per_request']:.0f} ms of CPU** (each run starts from an "
                 f"empty page cache), so one fully used CPU serves roughly "
                 f"**{found['one_cpu_capacity_rps']:.0f} requests/s**.")
    top = found.get("top_users")
    if top is not None:
        cpus = found["vm_cpus"]
        vm_line = (f"At {top} users, the top step, the VM's stack ({found['top_vm_scenario']}) "
                   f"used **{found['top_vm_cores']:.2f} cores** of its {cpus:g} (its quota "
                   f"stopped it in {found['top_vm_throttled_share']:.0%} of scheduling periods) "
                   f"and the laptop's ({found['top_laptop_scenario']}) "
                   f"**{found['top_laptop_cores']:.2f} cores**.")
        if found["vm_saturated"]:
            vm_line += (f" The VM used up its one CPU (at least 90 % of it in a step) from "
                        f"{found['vm_saturated_from_users']} users on.")
        elif found["top_vm_machine_cpu_pct"] >= 90:
            vm_line += (f" The VM did not get all of its one CPU either: the whole machine was "
                        f"{found['top_vm_machine_cpu_pct']:.0f} % busy meanwhile, so other work "
                        f"took CPU time the quota allowed it.")
        else:
            vm_line += (" The VM never used up its one CPU: this load is too light to show "
                        "what the CPU takes away.")
        parts.append(vm_line)
        cores = found["cores_on_this_machine"]
        if not short:
            parts.append(
                f"While the laptop's stack ran that step, the whole machine was "
                f"{found['top_laptop_machine_cpu_pct']:.0f} % busy ({cores} cores): the load "
                f"generator ({found['top_generator_cpu_pct']:.0f} % of one core), the relay "
                f"and every other process on this machine took "
                f"{max(found['top_other_cores'], 0):.2f} cores, and "
                f"{max(found['top_laptop_cores_left'], 0):.2f} were left idle (the mean load "
                f"average over the runs was {found['machine_loadavg_mean']:.1f}).")
        left = max(found["top_laptop_cores_left"], 0)
        more = found["top_laptop_cores"] - found["top_vm_cores"]
        if left < 0.25 * cpus and more < 0.5 * cpus:
            # the laptop's stack could have had no more: the machine had no idle CPU left
            parts.append(
                f"So the laptop had little more CPU than the VM ({found['top_laptop_cores']:.2f} "
                f"against {found['top_vm_cores']:.2f} cores): its stack may use every "
                f"core, but the load generator and the rest of this {cores}-core machine's "
                f"work compete for them, so at this load the laptop is barely a bigger "
                f"machine than the one-CPU VM, and what the CPU takes away is smaller here "
                f"than on a laptop with cores to spare."
                if not short else
                "The laptop had little more CPU than the VM: on this machine the load "
                "generator and other work compete with the laptop's stack for its cores.")
        elif found["vm_saturated"]:
            parts.append(
                f"The laptop's stack needed {found['top_laptop_cores']:.2f} cores for this "
                f"load and {left:.2f} were still idle: it had CPU to spare where the VM had "
                f"none, which is what the CPU takes away below.")
    if effects_table is not None and set(SCENARIOS) <= set(ran) and top is not None:
        at = effects_table[effects_table["users"] == top].set_index("metric")
        p50, p95, rps = at.loc["p50_ms"], at.loc["p95_ms"], at.loc["rps"]
        parts.append(
            f"At {top} users the network path added {p50['network_on_laptop']:+.0f} ms to the "
            f"laptop's median and {p95['network_on_laptop']:+.0f} ms to its p95 "
            f"({p50['network_on_vm']:+.0f} and {p95['network_on_vm']:+.0f} ms on the VM); "
            f"the one CPU added {p50['cpu_without_network']:+.0f} ms to the median, "
            f"{p95['cpu_without_network']:+.0f} ms to p95 and "
            f"{rps['cpu_without_network']:+.1f} requests/s to throughput (without the "
            f"network; {p95['cpu_with_network']:+.0f} ms to p95 with it). Laptop to VM, p95 "
            f"went from {p95['laptop']:.0f} to {p95['vm']:.0f} ms.")
        latency = [p50[column] for column in ("network_on_laptop", "network_on_vm",
                                              "cpu_without_network", "cpu_with_network")]
        latency += [p95[column] for column in ("network_on_laptop", "network_on_vm",
                                               "cpu_without_network", "cpu_with_network")]
        rounds = int(result.steps["round"].nunique()) if "round" in result.steps else 1
        if min(latency) < 0:
            parts.append(
                "A negative effect (the delay or the one CPU making requests faster) is mostly "
                "other work on this machine disturbing one of the two runs more than the other"
                + (", which one round cannot average out" if rounds == 1 else "")
                + "; near saturation the delay also lowers the offered load a little (each "
                "visitor's cycle grows by a round trip), which shortens the queue.")
    elif len(ran) < len(SCENARIOS):
        parts.append(f"This run had {len(ran)} of the four scenarios ({', '.join(ran)}): the "
                     f"difference is the total, not split into the network's part and the "
                     f"CPU's.")
    return " ".join(parts)


def plot_comparison(steps: pd.DataFrame, path, *, rtt_added_ms: float | None = None,
                    vm_cpus: float | None = None,
                    title: str = "Laptop vs a small VM: the same load test") -> Path:
    """Throughput, p50 and p95 latency against users, one line per scenario, and (where the
    run recorded it) the cores the stack used in each step, with the VM's CPU limit marked."""
    from matplotlib.figure import Figure

    styles = {"laptop": ("#1f77b4", "-"), "laptop+net": ("#1f77b4", "--"),
              "vm-local": ("#d62728", "-"), "vm": ("#d62728", "--")}
    steps = by_scenario(steps)
    panels = [("rps", "throughput", "requests/s"),
              ("p50_ms", "median response time (p50)", "response time (ms)"),
              ("p95_ms", "95th percentile response time (p95)", "response time (ms)")]
    if "stack_cores" in steps:
        panels.append(("stack_cores", "CPU the stack used", "cores"))
    fig = Figure(figsize=(4 * len(panels), 4.6))
    axes = fig.subplots(1, len(panels))
    for name in [name for name in SCENARIOS if name in set(steps["scenario"])]:
        rows = steps[steps["scenario"] == name].sort_values("users")
        color, line = styles[name]
        for axis, (column, _, _) in zip(axes, panels):
            axis.plot(rows["users"], rows[column], marker="o", color=color, linestyle=line,
                      label=SCENARIO_LABELS[name])
    for axis, (column, title_text, unit) in zip(axes, panels):
        axis.set_title(title_text, fontsize=10)
        axis.set_xlabel("concurrent users")
        axis.set_ylabel(unit)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    if "stack_cores" in steps and vm_cpus is not None and not math.isnan(vm_cpus):
        axes[-1].axhline(vm_cpus, color="#d62728", linewidth=0.8, linestyle=":")
        axes[-1].annotate("the VM's limit", (0.02, vm_cpus), xycoords=("axes fraction", "data"),
                          xytext=(0, 3), textcoords="offset points", fontsize=8,
                          color="#d62728")
        axes[-1].set_ylim(0, max(float(steps["stack_cores"].max()), vm_cpus) * 1.15)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.07), ncol=4,
               fontsize=8.5, frameon=False)
    added = (f" The delayed path added a measured {rtt_added_ms:.0f} ms per round trip."
             if rtt_added_ms is not None and not math.isnan(rtt_added_ms) else "")
    rounds = int(steps["rounds"].max())
    caption = ("Solid: reached directly; dashed: through the delayed network path. Blue: the "
               "stack with every core of this machine (the laptop); red: the same stack held "
               "to one CPU and 2 GB by its cgroup (the VM). Each point is one load step "
               "(ramp-up left out)" + (f", the median of {rounds} rounds." if rounds > 1
                                       else ".") + added)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    fig.text(0.01, 0.01, caption, fontsize=8.5, style="italic", ha="left", va="bottom",
             wrap=True)
    fig.tight_layout(rect=(0, 0.14, 1, 0.95))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
