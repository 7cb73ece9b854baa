"""Starting and stopping a whole stack: every process comes up healthy, `down` leaves no
process, pid file or listening port behind, a stale pid file is cleaned with a message, and a
port that is already taken stops `up` before it starts anything."""
import json
import socket
import subprocess
import sys
import time

import psutil
import pytest

from infra import Stack, StackError
from infra.config import REPO_DIR
from infra.processes import port_is_free
from tests.stack.stacks import free_offset


def dead_pid() -> int:
    """The pid of a process that has already exited."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def run_cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "infra", *args], cwd=REPO_DIR,
                          capture_output=True, text=True, timeout=timeout)


def assert_nothing_left(stack: Stack, pids: list[int]):
    assert not list(stack.pid_dir.glob("*.pid")), "pid files left behind"
    assert not (stack.run_dir / "stack.json").exists()
    alive = [pid for pid in pids if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes left running: {alive}"
    listening = [port for port in stack.config.tcp_ports() if not port_is_free(port)]
    assert not listening, f"ports still listened on: {listening}"


def test_up_starts_every_process_healthy_and_down_leaves_nothing_behind(small_config):
    """The command line, as `make up`, `make status` and `make down` run it, with a stale pid
    file left by an earlier stack."""
    config = small_config()
    run_dir = str(config.run_dir)
    config.run_dir.joinpath("pids").mkdir(parents=True)
    config.run_dir.joinpath("pids", "redis.pid").write_text(f"{dead_pid()}\n")
    pids = []
    try:
        for attempt in range(3):  # another offset if a concurrent process took a port
            up_args = ["up", "--run-dir", run_dir, "--web", "1", "--exp", "1", "--entity",
                       "1", "--workers", "1", "--sqlite-path", str(config.sqlite_path),
                       "--port-offset", str(config.port_offset), "--users", "10",
                       "--listings", "50"]
            up = run_cli(*up_args)
            if "ports the stack needs are taken" not in up.stderr:
                break
            config = config.replace(port_offset=free_offset(config))
        assert up.returncode == 0, up.stdout + up.stderr
        assert "removed a stale pid file for redis" in up.stdout
        assert "stack healthy in" in up.stdout

        status = run_cli("status", "--run-dir", run_dir)
        assert status.returncode == 0, status.stdout + status.stderr
        lines = status.stdout.splitlines()
        for name in ("log-receiver", "redis", "entity1", "experience1", "web1", "haproxy"):
            row = next(line for line in lines if line.startswith(name + " "))
            assert " yes " in row, row  # alive
        assert "total: RSS" in status.stdout

        processes = json.loads(run_cli("status", "--json", "--run-dir", run_dir).stdout)
        statuses = processes["processes"]
        assert all(status["alive"] and status["healthy"] for status in statuses), statuses
        assert {status["haproxy_state"] for status in statuses
                if status["kind"] == "web"} == {"UP"}
        assert processes["memory"]["rss"] > 50 * 2**20
        for status in statuses:
            main = psutil.Process(status["pid"])
            pids += [main.pid, *(child.pid for child in main.children(recursive=True))]

        again = run_cli(*up_args)
        assert again.returncode == 0 and "already running" in again.stdout
    finally:
        started = time.monotonic()
        down = run_cli("down", "--run-dir", run_dir)
        took = time.monotonic() - started
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stack stopped" in down.stdout
    assert took < 5 + 2  # the target, and the command line's own start
    assert_nothing_left(Stack(config), pids)
    after = run_cli("status", "--run-dir", run_dir)
    assert after.returncode == 3 and "no stack is running" in after.stdout


def test_a_taken_port_stops_up_with_its_number_before_anything_starts(small_config):
    config = small_config()
    port = config.frontend_port("web")
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        stack = Stack(config)
        started = time.monotonic()
        with pytest.raises(StackError) as refused:
            stack.up()
        assert time.monotonic() - started < 5
    assert f"port {port} (haproxy web frontend) is in use by pid" in str(refused.value)
    assert not stack.is_running()
    assert not list(stack.pid_dir.glob("*.pid"))


def test_a_port_taken_while_starting_stops_everything_already_started(small_config):
    """A port can be taken between the check and the start: `up` names it and stops what it
    had started."""
    config = small_config()
    stack = Stack(config)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    original = stack._check_ports

    def check_then_take():
        original()
        squatter.bind(("127.0.0.1", config.instance_port("entity", 1)))
        squatter.listen()

    stack._check_ports = check_then_take
    try:
        with pytest.raises(StackError) as failed:
            stack.up()
    finally:
        squatter.close()
    port = config.instance_port("entity", 1)
    assert f"cannot start entity1: port {port} is in use by pid" in str(failed.value)
    assert not stack.is_running()
    assert not list(stack.pid_dir.glob("*.pid"))
    assert all(port_is_free(port) for port in config.tcp_ports())


def test_a_stale_pid_file_is_removed_with_a_message(small_config, capsys):
    config = small_config()
    config.run_dir.joinpath("pids").mkdir(parents=True)
    pid = dead_pid()
    config.run_dir.joinpath("pids", "web1.pid").write_text(f"{pid}\n")
    messages = []
    stack = Stack(config, progress=messages.append)
    assert not stack.is_running()
    stack.down()
    assert any("stale pid file for web1" in message and str(pid) in message
               for message in messages), messages
    assert not config.run_dir.joinpath("pids", "web1.pid").exists()


def test_status_of_a_run_directory_without_a_stack_says_so(tmp_path):
    result = run_cli("status", "--run-dir", str(tmp_path / "nothing"))
    assert result.returncode == 3
    assert "no stack is running" in result.stdout


def test_processes_recorded_from_several_threads_at_once_are_all_in_stack_json(tmp_path):
    """The lab restarts a whole tier from one thread per instance; each start rewrites
    stack.json, and none may fail or lose another's entry."""
    import os
    import threading

    from infra import StackConfig

    stack = Stack(StackConfig(run_dir=tmp_path / "state", secrets_dir=tmp_path / "secrets"),
                  progress=None)
    names = [f"entity{number}" for number in range(1, 9)]
    errors = []

    def record(name):
        try:
            for _ in range(25):
                stack._record(name, os.getpid())
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=record, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    saved = json.loads((stack.run_dir / "stack.json").read_text())
    assert sorted(saved["processes"]) == sorted(names)
