"""The performance experiments' figures. Each has a title, units on every axis and a one-line
caption under it that says what to read from it, and is saved as a PNG to the path given.

Figures are made with matplotlib's object API (matplotlib.figure.Figure), not pyplot, so
nothing depends on, or changes, the backend of the notebook that calls them. Each function
returns the saved path; a notebook shows it with IPython.display.Image(path)."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

COLORS = {"rps": "#1f77b4", "p50_ms": "#2ca02c", "p95_ms": "#ff7f0e", "p99_ms": "#d62728",
          "users": "#7f7f7f", "cpu": "#9467bd", "fit": "#17becf"}


def _finish(fig: Figure, path, title: str, caption: str) -> Path:
    fig.suptitle(title, fontsize=12, fontweight="bold")
    fig.text(0.01, 0.01, caption, fontsize=8.5, style="italic", ha="left", va="bottom",
             wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def step_load(steps: pd.DataFrame, path, *, title: str, caption: str | None = None,
              saturation=None, x: str = "users") -> Path:
    """Throughput and p50/p95/p99 latency against the number of users, one point per step.
    `saturation` (lab.loadstats.Saturation) draws the knee."""
    fig = Figure(figsize=(10, 4.4))
    left, right = fig.subplots(1, 2)
    left.plot(steps[x], steps["rps"], "o-", color=COLORS["rps"], label="throughput")
    left.set_xlabel("concurrent users")
    left.set_ylabel("throughput (requests/s)")
    left.set_ylim(bottom=0)
    failed = steps[steps["failures"] > 0]
    if len(failed):
        left.scatter(failed[x], failed["rps"], marker="x", s=80, color="red", zorder=3,
                     label="step with failed requests")
    for column in ("p50_ms", "p95_ms", "p99_ms"):
        right.plot(steps[x], steps[column], "o-", color=COLORS[column],
                   label=column.replace("_ms", ""))
    right.set_xlabel("concurrent users")
    right.set_ylabel("response time (ms)")
    right.set_ylim(bottom=0)
    if saturation is not None and saturation.reached:
        for axis in (left, right):
            axis.axvline(saturation.knee_users, color="grey", linestyle="--", linewidth=1)
        left.annotate(f"knee: {saturation.knee_users} users", (saturation.knee_users, 1),
                      xycoords=("data", "axes fraction"), xytext=(-4, -12),
                      textcoords="offset points", ha="right", fontsize=8, color="grey")
    left.legend(loc="upper left", fontsize=8)
    right.legend(loc="upper left", fontsize=8)
    left.set_title("throughput", fontsize=10)
    right.set_title("latency percentiles", fontsize=10)
    if caption is None:
        peak = steps.loc[steps["rps"].idxmax()]
        caption = (f"Each point is one load step with its ramp-up left out; throughput peaked "
                   f"at {peak['rps']:.0f} requests/s with {int(peak[x])} users.")
    return _finish(fig, path, title, caption)


def latency_over_time(timeline: pd.DataFrame, stages: pd.DataFrame, path, *, title: str,
                      caption: str | None = None, cpu: pd.DataFrame | None = None,
                      settle_s: float = 0.0) -> Path:
    """Latency percentiles and throughput per second through a run, with the users on a
    second axis, the warm-up shaded and each step's discarded ramp hatched."""
    fig = Figure(figsize=(10, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    for column in ("p50_ms", "p95_ms", "p99_ms"):
        top.plot(timeline["t_s"], timeline[column], color=COLORS[column], linewidth=1.2,
                 label=column.replace("_ms", ""))
    top.set_ylabel("response time (ms)")
    top.set_ylim(bottom=0)
    users = top.twinx()
    edges = np.r_[stages["start_s"].to_numpy(), stages["end_s"].to_numpy()[-1]]
    levels = np.r_[stages["users"].to_numpy(), stages["users"].to_numpy()[-1]]
    users.step(edges, levels, where="post", color=COLORS["users"], linestyle=":",
               label="users")
    users.set_ylabel("users")
    users.set_ylim(bottom=0)
    for stage in stages.itertuples(index=False):
        for axis in (top, bottom):
            if stage.phase == "warmup":
                axis.axvspan(stage.start_s, stage.end_s, color="grey", alpha=0.15)
            elif settle_s:
                axis.axvspan(stage.start_s, stage.start_s + settle_s, color="grey",
                             alpha=0.07, hatch="//", linewidth=0)
    lines = top.get_legend_handles_labels()
    more = users.get_legend_handles_labels()
    top.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8, ncol=4)
    bottom.plot(timeline["t_s"], timeline["rps"], color=COLORS["rps"], label="throughput")
    bottom.set_ylabel("throughput (requests/s)")
    bottom.set_xlabel("time since the test started (s)")
    # the set-up before the schedule's zero (reading the site's pages) is not load
    bottom.set_xlim(float(stages["start_s"].min()) - 0.5, float(stages["end_s"].max()) + 1)
    bottom.set_ylim(bottom=0)
    if "failures" in timeline and timeline["failures"].sum() > 0:
        bottom.bar(timeline["t_s"], timeline["failures"], width=0.8, color="red",
                   alpha=0.6, label="failed requests/s")
    if cpu is not None and len(cpu):
        load = bottom.twinx()
        load.plot(cpu["t_s"], cpu["cpu_pct"], color=COLORS["cpu"], linewidth=1,
                  label="generator CPU (% of one core)")
        load.set_ylabel("generator CPU (% of a core)")
        load.set_ylim(0, max(110, float(cpu["cpu_pct"].max()) * 1.1))
        load.axhline(85, color=COLORS["cpu"], linestyle=":", linewidth=0.8)
        lines, more = bottom.get_legend_handles_labels(), load.get_legend_handles_labels()
        bottom.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    else:
        bottom.legend(loc="upper left", fontsize=8)
    if caption is None:
        caption = ("Per-second percentiles from every request; shaded: warm-up, hatched: each "
                   "step's ramp-up, both left out of the step figures.")
    return _finish(fig, path, title, caption)


def comparison(frame: pd.DataFrame, category: str, path, *, title: str, caption: str,
               throughput: str = "rps", latencies=("p50_ms", "p95_ms", "p99_ms"),
               error_rate: str | None = "error_rate", log_throughput: bool | None = None) -> Path:
    """Side-by-side bars per configuration: throughput on the left, latency percentiles on
    the right; a configuration with failed requests gets its error rate written on its bar."""
    fig = Figure(figsize=(10, 4.6))
    left, right = fig.subplots(1, 2)
    labels = [textwrap.fill(str(label), 14) for label in frame[category]]
    positions = np.arange(len(labels))
    bars = left.bar(positions, frame[throughput], color=COLORS["rps"])
    left.set_xticks(positions, labels, fontsize=8)
    left.set_ylabel("throughput (requests/s)")
    values = frame[throughput][frame[throughput] > 0]
    if log_throughput is None:
        log_throughput = len(values) > 1 and values.max() / values.min() > 20
    if log_throughput:
        # a constant answer can be a hundred times faster than a page: on a linear axis the
        # pages' bars would be invisible
        left.set_yscale("log")
        left.set_ylabel("throughput (requests/s, log scale)")
    left.set_title("throughput", fontsize=10)
    for bar, value in zip(bars, frame[throughput]):
        left.annotate(f"{value:,.0f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                      ha="center", va="bottom", fontsize=8)
    if error_rate and error_rate in frame:
        for bar, rate in zip(bars, frame[error_rate]):
            if rate and not math.isnan(rate) and rate > 0:
                left.annotate(f"{rate:.1%} failed", (bar.get_x() + bar.get_width() / 2,
                                                     bar.get_height()),
                              xytext=(0, 12), textcoords="offset points", ha="center",
                              color="red", fontsize=8, fontweight="bold")
    present = [column for column in latencies if column in frame]
    width = 0.8 / max(1, len(present))
    for i, column in enumerate(present):
        right.bar(positions + (i - (len(present) - 1) / 2) * width, frame[column], width,
                  color=COLORS.get(column), label=column.replace("_ms", ""))
    right.set_xticks(positions, labels, fontsize=8)
    right.set_ylabel("response time (ms)")
    right.set_title("latency percentiles", fontsize=10)
    right.legend(fontsize=8)
    return _finish(fig, path, title, caption)


def scalability(points: pd.DataFrame, fits, path, *, title: str, caption: str | None = None,
                x: str = "concurrency", y: str = "rps", n_max: float | None = None) -> Path:
    """Measured throughput against concurrency with the fitted USL/Amdahl curves (and any
    scaled predictions), each curve's peak marked."""
    fits = list(fits)
    n_max = n_max or max([float(points[x].max()) * 1.5] +
                         [min(f.peak_concurrency * 1.3, points[x].max() * 8) for f in fits
                          if math.isfinite(f.peak_concurrency)])
    fig = Figure(figsize=(8, 5))
    axis = fig.subplots()
    axis.scatter(points[x], points[y], color="black", zorder=3, label="measured")
    n = np.linspace(1, n_max, 300)
    styles = ["-", "--", ":", "-."]
    for i, f in enumerate(fits):
        label = (f"{f.model.upper()} fit, {f.cores} cores: λ={f.lam:.1f}/s σ={f.sigma:.3f} "
                 f"κ={f.kappa:.5f} (R²={f.r2:.3f})" if i == 0 or f.cores == fits[0].cores else
                 f"{f.model.upper()} scaled to {f.cores} cores (upper bound)")
        axis.plot(n, f.predict(n), styles[i % len(styles)], label=label, linewidth=1.4)
        if math.isfinite(f.peak_concurrency) and f.peak_concurrency <= n_max:
            axis.plot([f.peak_concurrency], [f.peak_throughput], "v", color="grey")
            axis.annotate(f"peak {f.peak_throughput:.0f}/s at N={f.peak_concurrency:.0f}",
                          (f.peak_concurrency, f.peak_throughput), xytext=(4, 6),
                          textcoords="offset points", fontsize=8)
    axis.set_xlabel("concurrency N (requests in flight)")
    axis.set_ylabel("throughput X (requests/s)")
    axis.set_ylim(bottom=0)
    axis.set_xlim(left=0)
    axis.legend(fontsize=8, loc="lower right")
    if caption is None:
        best = fits[0]
        caption = (f"X(N) = λN / (1 + σ(N−1) + κN(N−1)) fitted by least squares; RMSE "
                   f"{best.rmse_rps:.1f} requests/s over {best.points} points.")
    return _finish(fig, path, title, caption)
