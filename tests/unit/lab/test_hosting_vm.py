"""The simulated VM (lab.hosting.SimulatedVm): a namespace reachable only over its veth pair, its
processes held to one CPU and a memory cap, and nothing left of it afterwards, even when the
block inside fails. These need root (namespaces, cgroups) and skip with the reason otherwise;
the checks of what can run where, and of the specification, run everywhere."""
import subprocess
import sys
import time
import urllib.request

import pytest

from lab import hosting
from lab.hosting import HostingUnavailable, NetworkPath, SimulatedVm, VmSpec

REASON = hosting.availability()
needs_root = pytest.mark.skipif(REASON is not None, reason=f"simulated VM unavailable: {REASON}")
# A name of its own, so a test never touches a VM a notebook may have running.
SPEC = VmSpec(name="labvmtest", host_address="198.18.0.5", vm_address="198.18.0.6",
              memory_bytes=256 * 2**20)


@pytest.fixture(autouse=True)
def tiers_in_process():
    """No database needed (this overrides tests/unit's autouse fixture)."""
    yield


def wait_for(url: str, timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def http_server(vm: SimulatedVm, tmp_path):
    return vm.run([sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "8000",
                   "--directory", str(tmp_path)], log_path=tmp_path / "server.log")


@needs_root
def test_a_server_in_the_vm_is_reached_at_the_vm_address_and_is_gone_afterwards(tmp_path):
    (tmp_path / "hello.txt").write_text("from inside")
    with SimulatedVm(SPEC, progress=None) as vm:
        server = http_server(vm, tmp_path)
        assert wait_for(f"http://{SPEC.vm_address}:8000/hello.txt") == b"from inside"
        assert server.pid in vm.cgroups.pids()
        assert SPEC.name in hosting.namespaces()
    assert server.poll() is not None
    assert hosting.leftovers(SPEC) == []


@needs_root
def test_the_vm_has_its_own_loopback_so_its_ports_do_not_collide_with_the_hosts(tmp_path):
    with SimulatedVm(SPEC, progress=None) as vm:
        listing = subprocess.run(["ip", "netns", "exec", SPEC.name, "ip", "-o", "-4", "addr"],
                                 capture_output=True, text=True, timeout=10).stdout
        assert "lo" in listing and f"{SPEC.vm_address}/30" in listing
        assert vm.spec.vm_address not in subprocess.run(
            ["ip", "-o", "-4", "addr"], capture_output=True, text=True, timeout=10).stdout


@needs_root
def test_the_vm_is_held_to_one_cpu_by_its_cgroup(tmp_path):
    # Two processes that each need half a CPU-second of work: on two free cores they finish
    # in half a second; held to one CPU together, in a second at least (a lower bound: a busy
    # machine only makes it longer).
    work = ("import time\nend = time.process_time() + 0.5\n"
            "while time.process_time() < end: pass\n")
    with SimulatedVm(SPEC, progress=None) as vm:
        started = time.monotonic()
        workers = [vm.run([sys.executable, "-c", work], log_path=tmp_path / f"busy{i}.log")
                   for i in range(2)]
        for worker in workers:
            assert worker.wait(timeout=60) == 0
        elapsed = time.monotonic() - started
        usage = vm.usage()
        if vm.cgroups.version == "v1":
            quota = (vm.cgroups.dirs["cpu"] / "cpu.cfs_quota_us").read_text().split()
            period = (vm.cgroups.dirs["cpu"] / "cpu.cfs_period_us").read_text().split()
            assert quota == period == [str(SPEC.cpu_period_us)]
    assert usage["cpu_s"] >= 1.0
    assert elapsed >= 0.9  # one period's quota of slack: the first period may start full


@needs_root
def test_the_vm_is_torn_down_when_the_block_inside_fails(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with SimulatedVm(SPEC, progress=None) as vm:
            http_server(vm, tmp_path)
            1 / 0
    assert hosting.leftovers(SPEC) == []


@needs_root
def test_a_namespace_left_by_a_killed_run_is_replaced(tmp_path):
    subprocess.run(["ip", "netns", "add", SPEC.name], check=True, timeout=10)
    try:
        with SimulatedVm(SPEC, progress=None):
            assert SPEC.name in hosting.namespaces()
    finally:
        subprocess.run(["ip", "netns", "delete", SPEC.name], capture_output=True, timeout=10)
    assert hosting.leftovers(SPEC) == []


def test_without_root_the_reason_is_given_and_nothing_is_attempted(monkeypatch):
    monkeypatch.setattr(hosting.os, "geteuid", lambda: 1000)
    assert "needs root" in hosting.availability()
    with pytest.raises(HostingUnavailable, match="needs root"):
        with SimulatedVm(SPEC, progress=None):
            pass
    with pytest.raises(HostingUnavailable, match="needs root"):
        hosting.compare("unused", scenarios=("vm",))


def test_the_vm_keeps_to_the_network_benchmark_range():
    with pytest.raises(ValueError, match="198.18.0.0/15"):
        VmSpec(vm_address="10.0.0.2")
    with pytest.raises(ValueError, match="198.18.0.0/15"):
        VmSpec(host_address="192.168.1.1")


def test_one_cpu_is_a_quota_of_one_period():
    spec = VmSpec(cpus=1.0, cpu_period_us=100_000)
    assert spec.cpu_quota_us == 100_000
    assert VmSpec(cpus=0.5).cpu_quota_us == 50_000


def test_netem_delays_each_end_of_the_veth_pair_once():
    add, remove = hosting.netem_commands(VmSpec(), NetworkPath(one_way_ms=20, jitter_ms=5))
    assert [command[:6] for command in add] == [
        ["tc", "qdisc", "add", "dev", "labvm-h", "root"],
        ["ip", "netns", "exec", "labvm", "tc", "qdisc"]]
    assert all("20ms" in command and "5ms" in command for command in add)
    assert len(remove) == 2


def test_a_command_for_the_vm_joins_its_cgroups_before_entering_its_namespace():
    cgroups = hosting.Cgroups("x", None, 1, None)
    cgroups.dirs = {"cpu": hosting.Path("/sys/fs/cgroup/cpu/x")}
    vm = SimulatedVm.__new__(SimulatedVm)
    vm.spec, vm.cgroups = VmSpec(), cgroups
    command = vm.command(["python", "-V"])
    assert command[:2] == ["sh", "-c"]
    assert "echo $$ > /sys/fs/cgroup/cpu/x/cgroup.procs" in command[2]
    assert command[-6:] == ["ip", "netns", "exec", "labvm", "python", "-V"]


@needs_root
def test_the_vms_limits_can_be_lifted_and_put_back_while_it_runs(tmp_path):
    # The laptop's scenarios run on the same stack with the limits lifted: then the quota
    # stops nothing, and the CPU the group uses is still counted.
    work = ("import time\nend = time.process_time() + 0.3\n"
            "while time.process_time() < end: pass\n")
    with SimulatedVm(SPEC, progress=None) as vm:
        assert vm.limited
        vm.limit(False)
        assert not vm.limited
        before = vm.usage()
        worker = vm.run([sys.executable, "-c", work], log_path=tmp_path / "work.log")
        assert worker.wait(timeout=60) == 0
        after = vm.usage()
        if vm.cgroups.version == "v1":
            cpu, memory = vm.cgroups.dirs["cpu"], vm.cgroups.dirs["memory"]
            assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "-1"
            assert int((memory / "memory.limit_in_bytes").read_text()) > SPEC.memory_bytes
            vm.limit(True)
            assert (cpu / "cpu.cfs_quota_us").read_text().strip() == str(SPEC.cpu_quota_us)
            assert int((memory / "memory.limit_in_bytes").read_text()) == SPEC.memory_bytes
        else:
            vm.limit(True)
            assert (vm.cgroups.dirs["unified"] / "cpu.max").read_text().split()[0] == str(
                SPEC.cpu_quota_us)
        assert vm.limited
    assert after["cpu_s"] - before["cpu_s"] >= 0.3
    assert after["throttled_periods"] == before["throttled_periods"]
    assert hosting.leftovers(SPEC) == []


@needs_root
def test_the_usage_sampler_records_the_groups_cpu_over_time(tmp_path):
    work = ("import time\nend = time.process_time() + 0.4\n"
            "while time.process_time() < end: pass\n")
    with SimulatedVm(SPEC, progress=None) as vm:
        with hosting.UsageSampler(vm, interval=0.05) as sampler:
            worker = vm.run([sys.executable, "-c", work], log_path=tmp_path / "work.log")
            assert worker.wait(timeout=60) == 0
    samples = sampler.frame()
    assert len(samples) >= 3
    assert samples["cpu_s"].is_monotonic_increasing
    assert samples["cpu_s"].iloc[-1] - samples["cpu_s"].iloc[0] >= 0.4


@needs_root
def test_the_page_cache_is_emptied_inside_the_vm(tmp_path):
    from types import SimpleNamespace

    password, port = "not-on-the-command-line", 6391
    stack = SimpleNamespace(config=SimpleNamespace(redis_port=port),
                            credentials=SimpleNamespace(redis_password=password))
    with SimulatedVm(SPEC, progress=None) as vm:
        vm.run(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--requirepass", password], log_path=tmp_path / "redis.log")
        cli = vm.command(["redis-cli", "-p", str(port)])
        env = {"REDISCLI_AUTH": password, "PATH": "/usr/bin:/bin"}
        deadline = time.monotonic() + 10
        while subprocess.run([*cli, "SET", "page", "cached"], env=env, capture_output=True,
                             text=True).stdout.strip() != "OK":
            assert time.monotonic() < deadline, "redis did not start in the VM"
            time.sleep(0.05)
        hosting.empty_page_cache(vm, stack)
        left = subprocess.run([*cli, "DBSIZE"], env=env, capture_output=True, text=True)
        assert left.stdout.strip() == "0"
    assert hosting.leftovers(SPEC) == []


def test_the_vms_stack_publishes_only_its_web_frontend(tmp_path):
    from infra import StackConfig

    from lab.hosting_vm import VmStack

    config = StackConfig(run_dir=tmp_path / "state", secrets_dir=tmp_path / "secrets")
    env = VmStack(config, progress=None).haproxy_environment()
    assert env["LAB_HAPROXY_WEB_BIND"] == "0.0.0.0:8000"
    for name in ("EXPERIENCE", "ENTITY", "STATS"):
        assert env[f"LAB_HAPROXY_{name}_BIND"].startswith("127.0.0.1:")
