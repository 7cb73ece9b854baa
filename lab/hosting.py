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

Four scenarios separate the effects: `laptop` (loopback, every core), `laptop+net` (the delay
alone), `vm-local` (one CPU alone, the load generator beside the VM) and `vm` (both, which is
the laptop-to-droplet case). The load test is the perf tooling's own (lab.loadtest.run_locust
with tests/load/locustfile.py), the same for all four. Everything is torn down afterwards,
whatever happens: the stack's processes by pid, whatever is left in the VM's cgroups, the veth
pair, the namespace and the cgroups themselves. Creating namespaces needs root:
`availability()` says why not otherwise, and `compare` raises HostingUnavailable with that
reason before it starts anything.

A notebook calls `compare(...)` (or `HostingComparison.load(out_dir)` for a saved one), then
`rtt_table`, `comparison_table`, `effects`, `resources_table` and `plot_comparison`.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

REPO_DIR = Path(__file__).resolve().parent.parent
BENCHMARK_NETWORK = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544, section C.2.2
SCENARIOS = ("laptop", "laptop+net", "vm-local", "vm")
SCENARIO_LABELS = {
    "laptop": "laptop: loopback, all cores",
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
            folder = self.dirs["unified"]
            enabled = (folder.parent / "cgroup.subtree_control")
            enabled.write_text("+cpu +memory")
            if self.cpu_quota_us is not None:
                (folder / "cpu.max").write_text(f"{self.cpu_quota_us} {self.cpu_period_us}")
            if self.memory_bytes is not None:
                (folder / "memory.max").write_text(str(self.memory_bytes))
                if (folder / "memory.swap.max").exists():  # no swap, as on a droplet
                    (folder / "memory.swap.max").write_text("0")
        else:
            if self.cpu_quota_us is not None:
                (self.dirs["cpu"] / "cpu.cfs_period_us").write_text(str(self.cpu_period_us))
                (self.dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(self.cpu_quota_us))
            if self.memory_bytes is not None:
                (self.dirs["memory"] / "memory.limit_in_bytes").write_text(
                    str(self.memory_bytes))
        return self

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
        left = leftovers(self.spec, laptop_group=False)
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

    def usage(self) -> dict:
        return self.cgroups.usage()


class LaptopGroup:
    """The laptop's stack in a cgroup of its own, with no limit at all. Why: on a machine that
    is busy with other work, the kernel shares CPU time between groups first, and a VM's
    cgroup competes as one group while processes outside any group compete one by one. With
    both stacks in a group, the only difference left between them is the VM's quota (and its
    network), and the same counters measure how much CPU each really got."""

    def __init__(self, name: str = "lablaptop"):
        self.name = name
        self.cgroups = Cgroups(name, None, 100_000, None)
        self._processes: list[subprocess.Popen] = []

    def __enter__(self) -> "LaptopGroup":
        require_available()
        self.cgroups.create()
        return self

    def __exit__(self, *exc) -> None:
        for process in self._processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.cgroups.remove()

    def run(self, argv: list[str], *, log_path: Path, cwd: Path = REPO_DIR) -> subprocess.Popen:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            process = subprocess.Popen([*self.cgroups.enter_prefix(), *map(str, argv)],
                                       stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, cwd=cwd,
                                       start_new_session=True)
        self._processes.append(process)
        return process

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


def leftovers(spec: VmSpec | None = None, *, laptop_group: bool = True) -> list[str]:
    """What is left of a simulated VM (and of the laptop's cgroup): [] when the namespace,
    the veth pair, the cgroups and so their processes are all gone (the notebook shows this
    after the experiment)."""
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
            for name in (spec.name, *([LaptopGroup().name] if laptop_group else [])):
                if (parent / name).exists():
                    found.append(f"cgroup {parent / name}")
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


@contextmanager
def delayed_path(spec: VmSpec, target_port: int, path: NetworkPath, log_path: Path,
                 *, method: str = "auto"):
    """Yields (base URL, method, Relay or None) of the VM's port `target_port` over the delayed
    path: the VM's own address with netem on the veth pair, or a relay on 127.0.0.1 in front
    of it."""
    if method == "auto":
        method = "netem" if netem_available(spec) else "relay"
    if method == "netem":
        add, remove = netem_commands(spec, path)
        try:
            for argv in add:
                _run(argv)
            yield f"http://{spec.vm_address}:{target_port}", "netem", None
        finally:
            for argv in remove:
                _run(argv, check=False)
        return
    with relay_process((spec.vm_address, target_port), path, log_path) as relay:
        yield relay.url, "relay", relay


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
    """`compare`'s round-trip samples summarised per path: on the laptop's path the delayed
    URL against the laptop's own, on the VM's path the delayed URL against the VM reached
    directly over the veth pair."""
    baselines = {"laptop": "laptop", "vm": "vm-local"}
    parts = [rtt_summary(rtt[rtt["path"] == path], baseline=baseline).assign(path=path)
             for path, baseline in baselines.items() if (rtt["path"] == path).any()]
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    return table[["path", "connection", "url_name", "samples", "median_ms", "p90_ms",
                  "added_median_ms"]]


def added_rtt_ms(rtt: pd.DataFrame) -> float:
    """The round trip the delayed path adds, on a kept-alive connection (median; the laptop's
    path when measured there, where nothing else is slow)."""
    table = rtt_table(rtt)
    delayed = table[(table["connection"] == "kept-alive")
                    & table["url_name"].isin(["laptop+net", "vm"])]
    return float(delayed.sort_values("path")["added_median_ms"].iloc[0])


# --- the experiment ---------------------------------------------------------------------------

@dataclass
class HostingComparison:
    """What `compare` measured: one row per scenario, round and load step in `steps`, the
    round-trip samples in `rtt`, and per locust run (`runs`, keyed by run name) the CPU the
    stack used, the VM's cgroup counters, the relay's and the generator's CPU."""
    steps: pd.DataFrame
    rtt: pd.DataFrame
    runs: dict = field(default_factory=dict)
    path_method: str = ""
    spec: dict = field(default_factory=dict)
    network: dict = field(default_factory=dict)
    out_dir: Path | None = None
    vm_stack_start_s: float | None = None

    def save(self) -> None:
        self.steps.to_csv(self.out_dir / "hosting_steps.csv", index=False)
        self.rtt.to_csv(self.out_dir / "hosting_rtt.csv", index=False)
        (self.out_dir / "hosting.json").write_text(json.dumps(
            {"runs": self.runs, "path_method": self.path_method, "spec": self.spec,
             "network": self.network, "vm_stack_start_s": self.vm_stack_start_s},
            indent=2, default=str))

    @classmethod
    def load(cls, out_dir) -> "HostingComparison":
        """A comparison saved by an earlier `compare` (for the write-up, without re-running)."""
        out_dir = Path(out_dir)
        meta = json.loads((out_dir / "hosting.json").read_text())
        return cls(steps=pd.read_csv(out_dir / "hosting_steps.csv"),
                   rtt=pd.read_csv(out_dir / "hosting_rtt.csv"), out_dir=out_dir, **meta)


def _usage_delta(before: dict, after: dict) -> dict:
    delta = {key: after[key] - before[key] for key in ("cpu_s", "periods",
                                                        "throttled_periods", "throttled_s",
                                                        "oom_kills")}
    delta["memory_peak_bytes"] = after["memory_peak_bytes"]
    return delta


def _locust(out_dir, name, url, shape, think_time, run_dir):
    """One run of the perf tooling's locust experiment (lab.loadtest.run_locust), with the
    machine's load average around it: other work on this machine shows up there.

    Every run shares one discovery file (LOAD_SITE_FILE): the first run reads listing ids and
    usernames from its site's pages, the others reuse them. Both stacks are seeded alike, so
    the ids are the same on both, and a VM on one busy CPU is not asked for a burst of
    uncached search pages before its measurement starts (which can time out there)."""
    from . import loadtest

    load_before = os.getloadavg()
    run = loadtest.run_locust(out_dir, name, url, shape, think_time=think_time,
                              run_dir=run_dir,
                              env={"LOAD_SITE_FILE": str(Path(out_dir) / "site.json")})
    steps = run.steps()
    requests = run.requests()
    return steps, {"returncode": run.returncode, "wall_s": run.wall_s,
                   "requests_total": int(len(requests)),
                   "failures_total": int((~requests["ok"].astype(bool)).sum()),
                   "generator": run.generator(), "prefix": str(run.prefix),
                   "loadavg_1m_before": load_before[0], "loadavg_1m_after": os.getloadavg()[0]}


def _stack_config(config, *, run_dir: Path, sqlite_path: Path, port_offset: int = 0,
                  allowed_hosts: str | None = None, startup_timeout: float = 180.0):
    """`config` with its own state, database and (for the VM) host names. A stack on one
    CPU, on a machine that may be busy, starts several times slower than `make up`: each
    start-up step may take `startup_timeout` seconds."""
    extra = dict(config.extra_env)
    if allowed_hosts:
        extra["LAB_ALLOWED_HOSTS"] = allowed_hosts
    return config.replace(run_dir=run_dir, sqlite_path=sqlite_path, port_offset=port_offset,
                          extra_env=extra,
                          startup_timeout=max(config.startup_timeout, startup_timeout))


@contextmanager
def group_stack(group, config, *, log_path: Path, public_web: bool, timeout: float = 600):
    """The stack started inside `group` (a SimulatedVm or a LaptopGroup) by lab/hosting_vm.py,
    so that every process of it is born in the group; yields the infra.Stack that describes
    it (its pids are this machine's pids, so it is stopped from here)."""
    from infra import Stack

    argv = [sys.executable, "-m", "lab.hosting_vm", "--config-json",
            json.dumps(config.to_json())]
    process = group.run(argv + (["--public-web"] if public_web else []), log_path=log_path)
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
            scenarios=SCENARIOS, rounds: int = 1, rtt_samples: int = 40,
            path_method: str = "auto", run_dir=None, progress=print) -> HostingComparison:
    """Runs the same locust step load against each scenario (see the module docstring) and
    returns the per-step results, the measured round trips and what each run cost.

    Both stacks, the VM and the relays are up for the whole experiment, and the scenarios run
    one after the other, `rounds` times, each round in a rotated order: whatever else this
    machine is doing at the time then weighs on every scenario alike (the tables take the
    median over rounds).

    `config` is the infra.StackConfig of both stacks (default: `make up`'s, 2 instances per
    tier, the deployment's default too); `shape` the lab.traffic.StepLoad (default: 10 to 60
    users in steps of 10, 15 s each); `think_time` the visitors' pause between pages, in
    seconds. Raises HostingUnavailable, before starting anything, when the VM cannot be made
    here (no root, no `ip netns`, no cgroups)."""
    from contextlib import ExitStack, nullcontext

    from infra import StackConfig, free_port_offset

    from .traffic import StepLoad

    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenarios {sorted(unknown)}; known: {SCENARIOS}")
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    order = [name for name in SCENARIOS if name in scenarios]
    wants_vm = any(name.startswith("vm") for name in order)
    if wants_vm:
        require_available()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = config or StackConfig()
    shape = shape or StepLoad(step_users=10, step_seconds=15, max_users=60, warmup_seconds=10)
    progress = progress or (lambda *args: None)
    urls, relays, frames, runs, rtt_frames = {}, {}, [], {}, []
    method, vm, laptop, vm_start_s = "", None, None, None

    with ExitStack() as resources:  # closed in reverse: relays, stacks, the VM, the group
        if any(name.startswith("laptop") for name in order):
            laptop_config = _stack_config(config, run_dir=out_dir / "laptop-stack",
                                          sqlite_path=out_dir / "laptop.sqlite3")
            laptop_config = laptop_config.replace(port_offset=free_port_offset(laptop_config))
            progress(f"laptop: starting the stack on 127.0.0.1:"
                     f"{laptop_config.frontend_port('web')} (in a cgroup without limits)")
            laptop = resources.enter_context(LaptopGroup())
            laptop_stack = resources.enter_context(group_stack(
                laptop, laptop_config, log_path=out_dir / "laptop-stack-up.log",
                public_web=False))
            urls["laptop"] = laptop_stack.web_url
            if "laptop+net" in order:
                relays["laptop+net"] = resources.enter_context(relay_process(
                    ("127.0.0.1", laptop_config.frontend_port("web")), network,
                    out_dir / "laptop-relay.log"))
                urls["laptop+net"] = relays["laptop+net"].url
        if wants_vm:
            vm_config = _stack_config(config, run_dir=out_dir / "vm-stack",
                                      sqlite_path=out_dir / "vm.sqlite3",
                                      allowed_hosts=f"127.0.0.1,localhost,{spec.vm_address}")
            vm = resources.enter_context(SimulatedVm(spec, progress=progress))
            progress("vm: starting the stack inside the VM (it seeds its database on its "
                     "one CPU)")
            started = time.monotonic()
            resources.enter_context(group_stack(vm, vm_config,
                                                log_path=out_dir / "vm-stack-up.log",
                                                public_web=True))
            vm_start_s = round(time.monotonic() - started, 1)
            port = vm_config.frontend_port("web")
            urls["vm-local"] = f"http://{spec.vm_address}:{port}"
            if "vm" in order:
                method = path_method
                if method == "auto":
                    method = "netem" if netem_available(spec) else "relay"
                progress(f"vm: the network path is made with {method}")
                if method == "relay":
                    relays["vm"] = resources.enter_context(relay_process(
                        (spec.vm_address, port), network, out_dir / "vm-relay.log"))
                    urls["vm"] = relays["vm"].url
                else:
                    urls["vm"] = urls["vm-local"]

        def delay_for(name):
            return _netem(spec, network) if name == "vm" and method == "netem" else (
                nullcontext())

        # What the delayed path adds, measured on each path against its direct twin.
        for path, pair in (("laptop", ("laptop", "laptop+net")), ("vm", ("vm-local", "vm"))):
            present = [name for name in pair if name in urls]
            if method == "netem" and path == "vm":
                for name in present:  # one URL, with and without the qdisc
                    with delay_for(name):
                        rtt_frames.append(measure_rtt({name: urls[name]},
                                                      samples=rtt_samples).assign(path=path))
            elif present:
                rtt_frames.append(measure_rtt({name: urls[name] for name in present},
                                              samples=rtt_samples).assign(path=path))

        for number in range(1, rounds + 1):
            shift = (number - 1) % len(order)
            for name in order[shift:] + order[:shift]:
                run_name = name if rounds == 1 else f"{name}-r{number}"
                progress(f"round {number}/{rounds}, {name}: locust against {urls[name]}")
                group = vm if name.startswith("vm") else laptop
                before = group.usage()
                before_relay = relays[name].cpu_s() if name in relays else None
                with delay_for(name):
                    steps, info = _locust(out_dir, run_name, urls[name], shape, think_time,
                                          run_dir)
                usage = _usage_delta(before, group.usage())
                info["stack_cpu_s"] = usage["cpu_s"]
                if group is vm:
                    info["vm"] = usage
                if before_relay is not None:
                    info["relay_cpu_s"] = relays[name].cpu_s() - before_relay
                info.update(scenario=name, round=number)
                runs[run_name] = info
                steps.insert(0, "round", number)
                steps.insert(0, "scenario", name)
                frames.append(steps)
    if vm is not None:
        progress("after the experiment: " + (", ".join(leftovers(spec))
                                              or "no namespace, veth pair, cgroup or process "
                                                 "of the VM is left"))
    result = HostingComparison(
        steps=pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(),
        rtt=pd.concat(rtt_frames, ignore_index=True) if rtt_frames else pd.DataFrame(),
        runs=runs, path_method=method, spec=asdict(spec), network=asdict(network),
        out_dir=out_dir, vm_stack_start_s=vm_start_s)
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
    the CPU one request costs and what one CPU could therefore serve, how much CPU the
    stacks really got, and whether the VM's one-CPU limit was what held it back (its quota
    stopped it in a fair share of periods) or other work on this machine was."""
    resources = resources_table(result)
    clean = resources[resources["failure_rate"] <= max_failure_rate]
    demand = float(clean["cpu_ms_per_request"].median()) if len(clean) else float("nan")
    vm_runs = resources[resources["scenario"].str.startswith("vm")]
    laptop_runs = resources[resources["scenario"].str.startswith("laptop")]
    throttled = float(vm_runs["vm_throttled_share"].max()) if len(vm_runs) else float("nan")
    table = rtt_table(result.rtt) if len(result.rtt) else pd.DataFrame()
    new_connection = (table[(table["connection"] == "new")
                            & table["url_name"].isin(["laptop+net", "vm"])]
                      ["added_median_ms"].median() if len(table) else float("nan"))
    return {
        "rtt_added_ms": added_rtt_ms(result.rtt) if len(result.rtt) else float("nan"),
        "rtt_added_new_connection_ms": float(new_connection),
        "cpu_ms_per_request": demand,
        "one_cpu_capacity_rps": 1000 / demand if demand else float("nan"),
        "laptop_cores_used_mean": float(laptop_runs["stack_cores_used"].mean())
        if len(laptop_runs) else float("nan"),
        "vm_cores_used_mean": float(vm_runs["stack_cores_used"].mean())
        if len(vm_runs) else float("nan"),
        "vm_throttled_share_max": throttled,
        # the quota bound if it stopped the VM in at least a tenth of its periods
        "vm_cpu_limit_was_binding": bool(throttled >= 0.10),
        "machine_loadavg_mean": float(resources["loadavg_1m_before"].mean()),
        "cores_on_this_machine": os.cpu_count(),
        "vm_memory_peak_mb": float(vm_runs["vm_memory_peak_mb"].max())
        if len(vm_runs) else float("nan"),
    }


# --- analysis -----------------------------------------------------------------------------------

def by_scenario(steps: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario and load step: the median over rounds of throughput and each
    percentile, the requests and failures summed, and how many rounds there were."""
    steps = steps if "round" in steps else steps.assign(round=1)
    grouped = steps.groupby(["scenario", "users"])
    table = grouped[["rps", "p50_ms", "p95_ms", "p99_ms"]].median()
    table[["requests", "failures"]] = grouped[["requests", "failures"]].sum()
    table["rounds"] = grouped["round"].nunique()
    return table.reset_index()


def comparison_table(steps: pd.DataFrame, *, users: int | None = None) -> pd.DataFrame:
    """One row per scenario at one load step (the highest by default, the same for every
    scenario): throughput and latency percentiles (medians over rounds), and the ratio of
    each to the laptop's."""
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


def plot_comparison(steps: pd.DataFrame, path, *, rtt_added_ms: float | None = None,
                    title: str = "Laptop vs a small VM: the same load test") -> Path:
    """Throughput and p50/p95 latency against users, one line per scenario."""
    from matplotlib.figure import Figure

    styles = {"laptop": ("#1f77b4", "-"), "laptop+net": ("#1f77b4", "--"),
              "vm-local": ("#d62728", "-"), "vm": ("#d62728", "--")}
    steps = by_scenario(steps)
    fig = Figure(figsize=(12, 4.6))
    left, middle, right = fig.subplots(1, 3)
    for name in [name for name in SCENARIOS if name in set(steps["scenario"])]:
        rows = steps[steps["scenario"] == name].sort_values("users")
        color, line = styles[name]
        label = SCENARIO_LABELS[name]
        left.plot(rows["users"], rows["rps"], marker="o", color=color, linestyle=line,
                  label=label)
        middle.plot(rows["users"], rows["p50_ms"], marker="o", color=color, linestyle=line,
                    label=label)
        right.plot(rows["users"], rows["p95_ms"], marker="o", color=color, linestyle=line,
                   label=label)
    for axis, title_text, unit in ((left, "throughput", "requests/s"),
                                   (middle, "median response time (p50)", "ms"),
                                   (right, "95th percentile response time (p95)", "ms")):
        axis.set_title(title_text, fontsize=10)
        axis.set_xlabel("concurrent users")
        axis.set_ylabel(f"{title_text.split(' (')[0]} ({unit})" if unit != "ms"
                        else "response time (ms)")
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.07), ncol=4,
               fontsize=8.5, frameon=False)
    added = (f" The delayed path added a measured {rtt_added_ms:.0f} ms per round trip."
             if rtt_added_ms is not None else "")
    rounds = int(steps["rounds"].max())
    caption = ("Solid: no network delay; dashed: through the delayed path. Blue: the stack on "
               "this machine's loopback with every core; red: the same stack in a network "
               "namespace limited to one CPU and 2 GB. Each point is one load step (ramp-up "
               "left out)" + (f", the median of {rounds} rounds." if rounds > 1 else ".")
               + added)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    fig.text(0.01, 0.01, caption, fontsize=8.5, style="italic", ha="left", va="bottom",
             wrap=True)
    fig.tight_layout(rect=(0, 0.14, 1, 0.95))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
