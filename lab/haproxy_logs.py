"""HAProxy's access log as data. The stack's log receiver (infra/log_receiver.py) writes one
line per request, in HAProxy's HTTP log format, after the time it received it, and one line
per server state change:

    2026-11-30T02:53:23.097 127.0.0.1:38858 [30/Nov/2026:02:53:21.630] web web/web1
        0/0/0/1466/1466 200 7115 - - ---- 4/1/0/0/0 0/0 "GET /search?q=x HTTP/1.1"
    2026-11-30T02:53:24.068 Server web/web1 is DOWN, reason: Layer4 connection problem, ...

The fields of a request line (https://docs.haproxy.org/2.6/configuration.html#8.2.3):
client address:port, [accept date], frontend, backend/server, the timers TR/Tw/Tc/Tr/Ta in
milliseconds (-1 when that phase never happened), status, bytes sent, two captured cookies,
the four-letter termination state, the connection counts actconn/feconn/beconn/srv_conn and
retries ("+" in front when the request was redispatched to another server), the queues
srv_queue/backend_queue, and the request line. HAProxy 1.x called TR "Tq" and Ta "Tt" (in 2.x
Tt is the whole session, which with keep-alive includes the idle time before the request).

`LogCursor` reads the lines a run adds to the file; `requests_frame` and `events_frame` turn
lines into data frames; `per_server` is the distribution; `sample_lines` picks lines worth
showing in the write-up."""
from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

REQUEST_LINE = re.compile(
    r"^(?P<received>\S+) (?P<client>[\w.:\[\]-]+):(?P<client_port>\d+) "
    r"\[(?P<accepted>[^\]]+)\] (?P<frontend>\S+) (?P<backend>[^/\s]+)/(?P<server>\S+) "
    r"(?P<TR>-?\d+)/(?P<Tw>-?\d+)/(?P<Tc>-?\d+)/(?P<Tr>-?\d+)/\+?(?P<Ta>-?\d+) "
    r"(?P<status>-?\d+) \+?(?P<bytes>\d+) \S+ \S+ (?P<termination>\S{4}) "
    r"(?P<actconn>\d+)/(?P<feconn>\d+)/(?P<beconn>\d+)/(?P<srv_conn>\d+)/(?P<retries>\+?\d+) "
    r"(?P<srv_queue>\d+)/(?P<backend_queue>\d+) (?:\{[^}]*\} )*\"(?P<request>[^\"]*)\"$")
SERVER_EVENT = re.compile(
    r"^(?P<received>\S+) (?:\[\w+\] \(\d+\) : )?Server (?P<backend>[^/\s]+)/(?P<server>\S+) "
    r"is (?P<state>UP|DOWN|going DOWN for maintenance|leaving forced maintenance)\b"
    r"(?:, reason: (?P<reason>[^,]*(?:, info: \"[^\"]*\")?))?")
ACCEPT_FORMAT = "%d/%b/%Y:%H:%M:%S.%f"
TIMERS = ("TR", "Tw", "Tc", "Tr", "Ta")

# https://docs.haproxy.org/2.6/configuration.html#8.5: the first two letters of the state.
TERMINATION_CAUSE = {
    "-": "normal end", "C": "the client aborted", "S": "the server aborted or refused",
    "P": "the proxy stopped it (a deny rule, or a server error it turned into 502)",
    "L": "the proxy answered locally", "R": "a proxy resource ran out",
    "I": "an internal proxy error", "D": "the server was marked down (session killed)",
    "U": "the server left (session killed)", "K": "an administrator killed it",
    "c": "client-side timeout", "s": "server-side timeout",
}
TERMINATION_PHASE = {
    "-": "", "R": "while waiting for the request", "Q": "while queued",
    "C": "while connecting to the server", "H": "while waiting for the response headers",
    "D": "while sending the response body", "L": "while sending the last bytes",
    "T": "while tarpitted",
}


def explain_termination(state: str) -> str:
    """'SC--' -> 'the server aborted or refused, while connecting to the server'."""
    cause = TERMINATION_CAUSE.get(state[:1], state[:1])
    phase = TERMINATION_PHASE.get(state[1:2], state[1:2])
    return f"{cause}, {phase}" if phase else cause


def _epoch(local_time: datetime) -> float:
    """HAProxy and the receiver both write local wall-clock time; as seconds since the epoch
    it lines up with time.time() on the same machine."""
    return local_time.timestamp()


def parse_request(line: str) -> dict | None:
    """One request line as a dict (None for any other line)."""
    match = REQUEST_LINE.match(line.rstrip("\n"))
    if not match:
        return None
    fields = match.groupdict()
    method, _, rest = fields.pop("request").partition(" ")
    path, _, version = rest.rpartition(" ") if " " in rest else (rest, "", "")
    retries = fields.pop("retries")
    accepted = datetime.strptime(fields.pop("accepted"), ACCEPT_FORMAT)
    received = datetime.fromisoformat(fields.pop("received"))
    row = {"received": received, "accepted": accepted,
           "accepted_epoch": _epoch(accepted), "received_epoch": _epoch(received),
           "client": fields.pop("client"), "frontend": fields.pop("frontend"),
           "backend": fields.pop("backend"), "server": fields.pop("server"),
           "termination": fields.pop("termination"),
           "method": method, "path": path, "http_version": version,
           "retries": int(retries.lstrip("+")), "redispatched": retries.startswith("+")}
    for timer in TIMERS:
        row[f"{timer}_ms"] = int(fields.pop(timer))
    for name, value in fields.items():
        row[name] = int(value)
    return row


def parse_event(line: str) -> dict | None:
    """A server state change ('Server web/web1 is DOWN, reason: ...') as a dict."""
    match = SERVER_EVENT.match(line.rstrip("\n"))
    if not match:
        return None
    received = datetime.fromisoformat(match["received"])
    return {"received": received, "received_epoch": _epoch(received),
            "backend": match["backend"], "server": match["server"], "state": match["state"],
            "reason": (match["reason"] or "").strip()}


REQUEST_COLUMNS = ["received", "accepted", "accepted_epoch", "received_epoch", "client",
                   "frontend", "backend", "server", "termination", "method", "path",
                   "http_version", "retries", "redispatched", *(f"{t}_ms" for t in TIMERS),
                   "client_port", "status", "bytes", "actconn", "feconn", "beconn", "srv_conn",
                   "srv_queue", "backend_queue"]
EVENT_COLUMNS = ["received", "received_epoch", "backend", "server", "state", "reason"]


def requests_frame(lines) -> pd.DataFrame:
    """Every request line among `lines`, one row each (other lines are skipped)."""
    rows = [row for row in map(parse_request, lines) if row is not None]
    return pd.DataFrame(rows, columns=REQUEST_COLUMNS)


def events_frame(lines) -> pd.DataFrame:
    rows = [row for row in map(parse_event, lines) if row is not None]
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


class LogCursor:
    """The lines appended to a log file since the cursor was made (or last moved):

        cursor = LogCursor(stack.haproxy_log_path)
        ... run something ...
        lines = cursor.read(wait_for=lambda lines: count_requests(lines) >= sent)
    """

    def __init__(self, path):
        self.path = Path(path)
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def read(self, *, wait_for=None, timeout: float = 3.0, interval: float = 0.05,
             advance: bool = True) -> list[str]:
        """The complete lines written since the offset. HAProxy sends its log over UDP and
        the receiver writes it a moment later, so with `wait_for` (a predicate on the lines)
        this polls until it holds or `timeout` passes; it returns what is there either way."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self._lines()
            if wait_for is None or wait_for(lines) or time.monotonic() >= deadline:
                break
            time.sleep(interval)
        if advance:
            self.offset += sum(len(line.encode("utf-8")) + 1 for line in lines)
        return lines

    def _lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        complete = data[:data.rfind(b"\n") + 1]  # a line being written is left for later
        return complete.decode("utf-8", "replace").splitlines()


def count_requests(lines, frontend: str = "web") -> int:
    marker = f"] {frontend} "
    return sum(1 for line in lines if marker in line)


def _p(values: pd.Series, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def per_server(requests: pd.DataFrame, frontend: str = "web") -> pd.DataFrame:
    """Requests per server of one frontend: count, share of the total, how many were not
    answered 2xx/3xx, and the server's response time Tr and total time Ta (ms). Requests that
    no server answered (denied, or no server up) are on a row of their own, "<NOSRV>"."""
    frame = requests[requests["frontend"] == frontend]
    rows = []
    for server, group in frame.groupby("server", sort=True):
        answered = group[group["Tr_ms"] >= 0]
        rows.append({"server": server, "requests": len(group),
                     "errors": int((~group["status"].between(200, 399)).sum()),
                     "retried": int((group["retries"] > 0).sum()),
                     "Tr_mean_ms": round(float(answered["Tr_ms"].mean()), 1)
                     if len(answered) else float("nan"),
                     "Tr_p95_ms": round(_p(answered["Tr_ms"], 95), 1),
                     "Ta_p95_ms": round(_p(group["Ta_ms"], 95), 1),
                     "srv_conn_mean": round(float(group["srv_conn"].mean()), 2)})
    table = pd.DataFrame(rows, columns=["server", "requests", "errors", "retried", "Tr_mean_ms",
                                        "Tr_p95_ms", "Ta_p95_ms", "srv_conn_mean"])
    total = table["requests"].sum()
    table.insert(2, "share", (table["requests"] / total).round(3) if total else 0.0)
    return table


def termination_counts(requests: pd.DataFrame, frontend: str = "web") -> pd.DataFrame:
    """How the requests of one frontend ended: termination state, status, count, meaning."""
    frame = requests[requests["frontend"] == frontend]
    counts = (frame.groupby(["termination", "status"]).size().reset_index(name="requests")
              .sort_values("requests", ascending=False, ignore_index=True))
    counts["meaning"] = counts["termination"].map(explain_termination)
    return counts


def sample_lines(lines, *, per_kind: int = 1, frontend: str = "web") -> dict[str, list[str]]:
    """A few lines worth showing, by kind: an ordinary request served by each server,
    requests HAProxy retried (on another server, or on the same one), requests that ended in
    an error (by status and termination state), requests refused by the log-in rate limit
    (429), and server state changes."""
    kinds: dict[str, list[str]] = {}

    def keep(kind, line):
        bucket = kinds.setdefault(kind, [])
        if len(bucket) < per_kind:
            bucket.append(line)

    for line in lines:
        event = parse_event(line)
        if event is not None:
            keep(f"server {event['state']}", line)
            continue
        row = parse_request(line)
        if row is None or row["frontend"] != frontend:
            continue
        if row["status"] == 429:
            keep("rate limited (429)", line)
        elif not 200 <= row["status"] < 400:
            keep(f"error {row['status']} ({row['termination']})", line)
        elif row["redispatched"]:
            keep("retried on another server", line)
        elif row["retries"]:
            keep("retried on the same server", line)
        elif row["server"] != "<NOSRV>":
            keep(f"served by {row['server']}", line)
    return kinds
