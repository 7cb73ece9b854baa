"""The load-balancing notebook's figures, each with a title, units on every axis and a one-line
caption, saved as PNG. matplotlib's object API (Figure), so nothing here touches the backend of
the notebook that calls it; each function returns the saved path."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .loadbalancing import FailoverRun, is_error

SERVER_COLORS = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                 "#17becf"]
ERROR_COLOR = "#d62728"


def _finish(fig: Figure, path, title: str, caption: str) -> Path:
    fig.suptitle(title, fontsize=12, fontweight="bold")
    fig.text(0.01, 0.01, caption, fontsize=8.5, style="italic", ha="left", va="bottom",
             wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _server_color(servers):
    return {server: SERVER_COLORS[index % len(SERVER_COLORS)]
            for index, server in enumerate(sorted(servers))}


def distribution(per_server: pd.DataFrame, path, *, caption: str) -> Path:
    """Left: requests each web instance served, per scenario (HAProxy's log). Right: the
    instances' mean response time Tr in the same runs."""
    frame = per_server[per_server["server"] != "<NOSRV>"]
    scenarios = list(dict.fromkeys(frame["scenario"]))
    servers = sorted(frame["server"].unique())
    colors = _server_color(servers)
    fig = Figure(figsize=(11, 4.6))
    left, right = fig.subplots(1, 2)
    width = 0.8 / len(servers)
    x = np.arange(len(scenarios))
    for index, server in enumerate(servers):
        rows = frame[frame["server"] == server].set_index("scenario").reindex(scenarios)
        offsets = x + (index - (len(servers) - 1) / 2) * width
        left.bar(offsets, rows["share"] * 100, width, color=colors[server], label=server)
        right.bar(offsets, rows["Tr_mean_ms"], width, color=colors[server], label=server)
    left.axhline(100 / len(servers), color="black", linestyle="--", linewidth=1,
                 label="equal share")
    for axes in (left, right):
        axes.set_xticks(x)
        axes.set_xticklabels([name.replace(", ", ",\n") for name in scenarios], fontsize=9)
        axes.legend(fontsize=8)
        axes.grid(axis="y", alpha=0.3)
    left.set_ylabel("share of requests (%)")
    left.set_title("requests per web instance (HAProxy's log)", fontsize=10)
    right.set_ylabel("mean response time Tr (ms)")
    right.set_title("how long each instance took to answer", fontsize=10)
    return _finish(fig, path, "Load distribution: round robin and leastconn", caption)


def failover(runs: dict[str, FailoverRun], path, *, caption: str) -> Path:
    """One panel per balancer: each request's latency at the time it was sent, coloured by
    the instance that answered; errors in red at the top; the kill, restart and the moment
    the victim answered its health check again as vertical lines; shaded while the balancer
    had the victim marked down."""
    fig = Figure(figsize=(12.5, 2.9 * len(runs)))
    axes_list = np.atleast_1d(fig.subplots(len(runs), 1, sharex=True))
    servers = sorted({server for run in runs.values()
                      for server in run.requests["served_by"].unique() if server})
    colors = _server_color(servers)
    for axes, (name, run) in zip(axes_list, runs.items()):
        requests, marks = run.requests, run.marks
        start = marks["start"]
        ok = requests[~is_error(requests)]
        bad = requests[is_error(requests)]
        for server in servers:
            rows = ok[ok["served_by"] == server]
            axes.scatter(rows["epoch"] - start, rows["latency_ms"], s=4, alpha=0.5,
                         color=colors[server], label=server)
        metrics = run.metrics()
        top = max(float(requests["latency_ms"].max()) if len(requests) else 1.0, 10.0) * 1.6
        if len(bad):
            axes.scatter(bad["epoch"] - start, np.clip(bad["latency_ms"], 1, None), s=22,
                         marker="x", color=ERROR_COLOR,
                         label=f"error ({len(bad)})")
        for key, style, label in (("kill", "-", f"{run.victim} killed"),
                                  ("restart", "--", f"{run.victim} restarted"),
                                  ("healthy", ":", f"{run.victim} healthy")):
            if marks.get(key):
                axes.axvline(marks[key] - start, color="black", linestyle=style, linewidth=1,
                             label=label)
        down = metrics.get("marked_down_after_kill_s")
        if down is not None:
            up_after = metrics.get("marked_up_after_healthy_s")
            end = (marks["healthy"] + up_after if up_after is not None and marks.get("healthy")
                   else marks["end"])
            axes.axvspan(marks["kill"] + down - start, end - start, color="orange", alpha=0.15,
                         label=f"{run.victim} marked DOWN by HAProxy")
        axes.set_yscale("log")
        axes.set_ylim(1, top)
        axes.set_ylabel("latency (ms)")
        axes.set_title(f"{name}: {metrics['errors']} errors in {metrics['requests']} requests",
                       fontsize=10, loc="left")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=2,
                    borderaxespad=0)
    axes_list[-1].set_xlabel("time since the load started (s)")
    return _finish(fig, path, f"Killing {next(iter(runs.values())).victim} under load",
                   caption)


def balancers(throughput: pd.DataFrame, failover_table: pd.DataFrame, path, *,
              caption: str) -> Path:
    """HAProxy and pen side by side: wrk's throughput and latency percentiles, and the
    client-visible errors when an instance was killed."""
    fig = Figure(figsize=(12, 4.2))
    rate_axes, latency_axes, error_axes = fig.subplots(1, 3)
    mean = throughput.groupby("balancer", sort=False)[["rps", "p50_ms", "p99_ms"]].mean()
    names = list(mean.index)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c"]
    rate_axes.bar(names, mean["rps"], color=colors[:len(names)])
    rate_axes.set_ylabel("throughput (requests/s)")
    rate_axes.set_title("wrk, same page, same instances", fontsize=10)
    x = np.arange(len(names))
    latency_axes.bar(x - 0.2, mean["p50_ms"], 0.4, label="p50", color="#2ca02c")
    latency_axes.bar(x + 0.2, mean["p99_ms"], 0.4, label="p99", color="#d62728")
    latency_axes.set_xticks(x)
    latency_axes.set_xticklabels(names)
    latency_axes.set_ylabel("latency (ms)")
    latency_axes.set_title("wrk latency percentiles", fontsize=10)
    latency_axes.legend(fontsize=8)
    error_axes.bar(failover_table["balancer"].str.replace(", ", ",\n"),
                   failover_table["errors"], color=ERROR_COLOR)
    for index, value in enumerate(failover_table["errors"]):
        error_axes.text(index, value, str(int(value)), ha="center", va="bottom", fontsize=9)
    error_axes.set_ylim(0, max(float(failover_table["errors"].max()) * 1.2, 1.0))
    error_axes.set_ylabel("client-visible errors (requests)")
    error_axes.set_title("errors while an instance was killed", fontsize=10)
    for axes in (rate_axes, latency_axes, error_axes):
        axes.grid(axis="y", alpha=0.3)
    return _finish(fig, path, "HAProxy and pen in front of the same web instances", caption)


def rate_limit(frame: pd.DataFrame, limit: int, window: int, path, *, caption: str) -> Path:
    """Each request at the time it was sent, by its status: the burst's log-in POSTs and
    GETs, then the single POSTs that probe when log-ins are let through again."""
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 1)
    styles = {("burst", "POST", True): ("#d62728", "x", "log-in POST refused (429)"),
              ("burst", "POST", False): ("#1f77b4", "o", "log-in POST reached the site"),
              ("burst", "GET", True): ("#ff7f0e", "s", "GET refused"),
              ("burst", "GET", False): ("#2ca02c", "s", "GET answered"),
              ("recovery", "POST", True): ("#d62728", "+", "later log-in POST refused"),
              ("recovery", "POST", False): ("#1f77b4", "D", "later log-in POST let through")}
    for (phase, method, refused), (color, marker, label) in styles.items():
        rows = frame[(frame["phase"] == phase) & (frame["method"] == method)
                     & ((frame["status"] == 429) == refused)]
        if len(rows):
            axes.scatter(rows["t_s"], rows["status"], color=color, marker=marker, s=30,
                         label=f"{label} ({len(rows)})")
    axes.set_xlabel("time since the first request (s)")
    axes.set_ylabel("HTTP status")
    axes.set_yticks(sorted(frame["status"].unique()))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="center right")
    return _finish(fig, path, f"Log-in rate limit: {limit} POSTs per {window} s per address",
                   caption)
