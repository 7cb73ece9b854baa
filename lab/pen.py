"""pen, the simple TCP load balancer the assignment names (Debian's package), in front of the
stack's own web instances, for a side-by-side comparison with HAProxy.

pen balances connections, not requests: it picks a server when a client connects and relays
bytes both ways until either side closes. It knows nothing of HTTP, so it cannot check
`/healthz`, retry a request, or see a status code; a server is noticed to be down only when a
new connection to it fails, and is then left out ("blacklisted") for `blacklist_s` seconds.

    with pen.running(stack.instances("web"), folder) as balancer:
        httpx.get(balancer.url + "/")

The process runs in the foreground (-f) as our child; its pid is also written to the stack's
pid folder when one is given, so that whatever stops a run's leftover stacks stops it too."""
from __future__ import annotations

import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from .loadtest import stop_process

PEN = "pen"
DEFAULT_BLACKLIST_S = 30  # pen's own default (-b); see `man pen`


@dataclass
class Pen:
    url: str
    port: int
    argv: list
    pid: int
    log: Path


def command(port: int, servers, *, blacklist_s: float | None = None, pid_file=None) -> list:
    """The pen command line. -f: stay in the foreground, so the process we start is pen
    itself. -r: plain round robin; without it pen sends a client back to the server it used
    last, keyed by client address, and every client here is 127.0.0.1, so all traffic would
    go to one server. -b: seconds a server that refused a connection is left out."""
    argv = [PEN, "-f", "-r"]
    if blacklist_s is not None:
        argv += ["-b", str(int(blacklist_s))]
    if pid_file is not None:
        argv += ["-p", str(pid_file)]
    return [*argv, f"127.0.0.1:{port}", *servers]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def until_ready(process: subprocess.Popen, answers, timeout: float, name: str, where=""):
    """Waits until `answers(client)` (an httpx client for plain HTTP) is true, or raises if
    the balancer `process` exits first or `timeout` seconds pass; `where` says where its
    output is. Used for pen and for the HAProxy variants of lab.loadbalancing."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0, verify=False) as client:  # plain HTTP
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; {where}")
            try:
                if answers(client):
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{name} did not answer within {timeout} s; {where}")
            time.sleep(0.05)


@contextmanager
def running(instances, folder, *, port: int | None = None, blacklist_s: float | None = None,
            pid_dir=None, ready_path: str = "/healthz", ready_timeout: float = 10.0):
    """pen on 127.0.0.1:`port` (a free one by default) in front of `instances` (infra
    Instances, or "host:port" strings); waits until a request through it is answered, and
    always stops it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    servers = [getattr(each, "url", each).replace("http://", "") for each in instances]
    argv = command(port, servers, blacklist_s=blacklist_s)
    log = folder / "pen.log"
    with open(log, "w") as handle:
        # pen prints harmless GeoIP warnings on start; they go to the log with the rest
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file = Path(pid_dir) / "pen.pid" if pid_dir else None
    if pid_file is not None:
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{process.pid}\n")
    url = f"http://127.0.0.1:{port}"
    try:
        until_ready(process, lambda client: client.get(url + ready_path).status_code == 200,
                    ready_timeout, f"pen on :{port}", f"see {log}")
        yield Pen(url=url, port=port, argv=argv, pid=process.pid, log=log)
    finally:
        stop_process(process)
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
