"""Starting, watching and stopping the stack's processes by pid, and checking ports.

Every process is started in its own session (its own process group), so one signal reaches a
gunicorn master and its workers together, and a Ctrl-C in the terminal that ran `up` does not
reach the stack. Readiness is always a poll against a deadline (`wait_until`), never a fixed
sleep: the stack is ready as soon as it is ready, and a failure says what did not come up."""
from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil


class StackError(RuntimeError):
    """Something about the stack that its user must act on; the message says what."""


# Popen objects of the processes this Python process started, so their exit can be reaped
# (a dead child stays a zombie, which looks alive to psutil, until its parent waits for it).
_children: dict[int, subprocess.Popen] = {}


def wait_until(check: Callable[[], object], *, timeout: float, what: str,
               interval: float = 0.05, on_timeout: Callable[[], str] | None = None):
    """Polls `check` until it returns something truthy (which is returned) or the deadline
    passes (StackError naming `what`). `check` may raise StackError to give up early."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = f"\n{on_timeout()}" if on_timeout else ""
            raise StackError(f"{what}: not ready after {timeout:g} s{detail}")
        time.sleep(interval)


# --- pid files ---------------------------------------------------------------------------
def read_pid(path: Path) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def write_pid(path: Path, pid: int) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(f"{pid}\n")
    temporary.replace(path)


def process_create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def is_alive(pid: int | None, create_time: float | None = None) -> bool:
    """True when `pid` runs and, if `create_time` is given, is still the process that was
    started then (not a later process that was given the same pid)."""
    if not pid:
        return False
    reap(pid)
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            reap(pid)
            return False
        if create_time is not None and abs(process.create_time() - create_time) > 0.5:
            return False
        return True
    except psutil.Error:
        return False


def reap(pid: int) -> None:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)


# --- starting and stopping ---------------------------------------------------------------
def spawn(argv: list[str], *, env: dict, log_path: Path, cwd: Path) -> subprocess.Popen:
    """Starts `argv` in the background, in its own session, with stdout and stderr appended
    to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    _children[process.pid] = process
    return process


def _gone(process: psutil.Process) -> bool:
    try:
        if process.status() != psutil.STATUS_ZOMBIE:
            return False
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False
    reap(process.pid)  # our own child: wait for it, so no zombie is left behind
    return True


def wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Waits until every process has exited; returns those still running at the deadline.
    An exited process counts as gone even while it is a zombie: its parent may be an init
    that reaps only every second or so (psutil.wait_procs would wait for that)."""
    deadline = time.monotonic() + timeout
    pending = list(processes)
    while pending:
        pending = [process for process in pending if not _gone(process)]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return pending


def process_tree(pid: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return []


def stop_processes(targets: Iterable[tuple[int, int]], *, timeout: float) -> list[int]:
    """Sends each (pid, signal) its signal, waits up to `timeout` seconds for every process
    of their trees to exit, then SIGKILLs what is left. Returns the pids that had to be
    killed."""
    trees = []
    for pid, signum in targets:
        tree = process_tree(pid)
        trees.extend(tree)
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    alive = wait_gone(trees, timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    wait_gone(alive, 2)
    return [process.pid for process in alive]


def kill_group(pid: int) -> None:
    """SIGKILLs the process and everything it started (a crash, for failover experiments)."""
    tree = process_tree(pid)
    try:
        group = os.getpgid(pid)
        if group != os.getpgid(0):  # never our own group (every stack process has its own)
            os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for process in tree:  # children that left the group, if any
        try:
            process.kill()
        except psutil.Error:
            pass
    wait_gone(tree, 2)


# --- ports -------------------------------------------------------------------------------
def port_is_free(port: int, *, udp: bool = False, host: str = "127.0.0.1") -> bool:
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as probe:
        if not udp:  # as servers do, so that connections in TIME_WAIT do not count
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_owner(port: int, *, udp: bool = False) -> str:
    """Who listens on `port`, as well as this user may know: "pid 123 (haproxy)"."""
    kind = "udp" if udp else "tcp"
    try:
        for connection in psutil.net_connections(kind=kind):
            if connection.laddr and connection.laddr.port == port and (
                    udp or connection.status == psutil.CONN_LISTEN):
                if connection.pid:
                    try:
                        return f"pid {connection.pid} ({psutil.Process(connection.pid).name()})"
                    except psutil.Error:
                        return f"pid {connection.pid}"
                return "another process"
    except psutil.AccessDenied:
        pass
    return "another process"


def listening_ports(pids: Iterable[int]) -> set[int]:
    ports = set()
    for pid in pids:
        for process in process_tree(pid):
            try:
                for connection in process.net_connections(kind="inet"):
                    if connection.status == psutil.CONN_LISTEN or not connection.raddr:
                        ports.add(connection.laddr.port)
            except psutil.Error:
                pass
    return ports


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
