"""Reading a load test's output into pandas and turning it into the figures a performance
engineer trusts: throughput, p50/p95/p99 and error rate per load step with the warm-up and each
step's ramp left out, the generator's own CPU, the saturation point, and wrk's report.

Everything here works on files already written (see tests/unit/lab/samples/), so it is tested
without starting a process.

Where each number comes from:
- per-step figures: the locustfile's request log (`<prefix>_requests.csv`, one row per request),
  cut into the schedule's steps (`<prefix>_meta.json`);
- whole-run totals per endpoint: locust's `--json-file` (exact counts and the full response-time
  histogram; the final `_stats.csv` is only the last periodic snapshot);
- latency over time: locust's `--csv-full-history` file (`_stats_history.csv`), one row a second
  with percentiles over a rolling ten-second window."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# A generator process above this share of one core is saturated: locust (gevent) runs on one
# core per process and warns itself at 90 %; past about 85 % its own scheduling delays show up
# as server latency.
GENERATOR_SATURATION_PCT = 85.0

PERCENTILES = (50, 95, 99)


# --- reading ----------------------------------------------------------------------------------

def read_meta(prefix) -> dict:
    return json.loads(Path(f"{prefix}_meta.json").read_text())


def stages_frame(meta: dict) -> pd.DataFrame:
    """The schedule a run followed: phase, step, users, start_s, end_s."""
    return pd.DataFrame(meta["schedule"])


def read_requests(prefix) -> pd.DataFrame:
    frame = pd.read_csv(f"{prefix}_requests.csv", keep_default_na=False,
                        dtype={"method": str, "name": str, "error": str})
    frame["ok"] = frame["ok"].astype(bool)
    return frame


def read_history(prefix, t0_epoch: float | None = None) -> pd.DataFrame:
    """locust's `_stats_history.csv` with tidy column names; `t_s` counts from the schedule's
    zero when t0_epoch is given (the meta file's t0_epoch)."""
    raw = pd.read_csv(f"{prefix}_stats_history.csv")
    names = {"Timestamp": "timestamp", "User Count": "users", "Type": "method", "Name": "name",
             "Requests/s": "rps", "Failures/s": "failures_per_s",
             "Total Request Count": "requests_total", "Total Failure Count": "failures_total",
             "Total Median Response Time": "total_p50_ms",
             "Total Average Response Time": "total_mean_ms",
             "Total Max Response Time": "total_max_ms"}
    for column in raw.columns:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)%", column)
        if match:
            names[column] = f"p{match.group(1).replace('.', '_')}_ms"
    frame = raw.rename(columns=names)
    keep = [name for name in dict.fromkeys(names.values()) if name in frame.columns]
    frame = frame[keep].copy()
    for column in frame.columns:
        if column.startswith("p") and column.endswith("_ms"):
            # locust writes "N/A" before a window has any request
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["method"] = frame["method"].fillna("")
    if t0_epoch is not None:
        frame["t_s"] = frame["timestamp"] - t0_epoch
    return frame


def histogram_percentile(histogram: dict, fraction: float) -> float:
    """A percentile of locust's response-time histogram ({rounded ms: count}) by locust's own
    rule (locust.stats.calculate_response_time_percentile), so the numbers agree with its
    report: walking down from the slowest bucket, the first bucket at which no more than
    `fraction` of the requests are left below."""
    counts = {float(key): int(value) for key, value in histogram.items()}
    total = sum(counts.values())
    if not total:
        return math.nan
    allowed_below = int(total * fraction)
    seen = 0
    for value in sorted(counts, reverse=True):
        seen += counts[value]
        if total - seen <= allowed_below:
            return value
    return min(counts)


def read_stats_json(prefix) -> pd.DataFrame:
    """locust's `--json-file` output: one row per endpoint plus an `Aggregated` row, with exact
    totals and percentiles from the full histogram. `rps` is over the whole run (warm-up
    included), so rare endpoints are not credited with the rate of their few seconds."""
    entries = json.loads(Path(f"{prefix}.json").read_text())
    if not entries:
        return pd.DataFrame()
    started = min(e["start_time"] for e in entries)
    ended = max((e["last_request_timestamp"] or e["start_time"]) for e in entries)
    duration = max(1e-9, ended - started)
    merged: dict = {}
    rows = []
    for entry in entries:
        for key, value in entry["response_times"].items():
            merged[float(key)] = merged.get(float(key), 0) + value
        rows.append(_json_row(entry["method"] or "", entry["name"], entry,
                              entry["response_times"], duration))
    total = {"num_requests": sum(e["num_requests"] for e in entries),
             "num_failures": sum(e["num_failures"] for e in entries),
             "total_response_time": sum(e["total_response_time"] for e in entries),
             "max_response_time": max(e["max_response_time"] for e in entries),
             "total_content_length": sum(e["total_content_length"] for e in entries)}
    rows.append(_json_row("", "Aggregated", total, merged, duration))
    return pd.DataFrame(rows)


def _json_row(method, name, entry, histogram, duration):
    requests = entry["num_requests"]
    row = {"method": method, "name": name, "requests": requests,
           "failures": entry["num_failures"],
           "error_rate": entry["num_failures"] / requests if requests else 0.0,
           "mean_ms": entry["total_response_time"] / requests if requests else math.nan,
           "max_ms": entry["max_response_time"],
           "mean_bytes": entry["total_content_length"] / requests if requests else math.nan,
           "rps": requests / duration}
    for q in PERCENTILES:
        row[f"p{q}_ms"] = histogram_percentile(histogram, q / 100)
    return row


def read_failures(prefix) -> pd.DataFrame:
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return pd.DataFrame(columns=["method", "name", "error", "occurrences"])
    frame = pd.read_csv(path)
    return frame.rename(columns={"Method": "method", "Name": "name", "Error": "error",
                                 "Occurrences": "occurrences"})


def read_cpu(path) -> pd.DataFrame:
    """The generator's CPU samples written by lab.loadtest (t_s, cpu_pct, processes)."""
    return pd.read_csv(path)


# --- per-step figures -------------------------------------------------------------------------

def default_settle_s(stages: pd.DataFrame) -> float:
    """Seconds dropped at the start of each step: the new users' ramp-up and the queues
    adjusting to it. A fifth of a step, at least one second, at most five."""
    steps = stages[stages["phase"] == "step"]
    length = float((steps["end_s"] - steps["start_s"]).min()) if len(steps) else 0.0
    return float(min(5.0, max(1.0, length / 5)))


def _latency_figures(times_ms: np.ndarray) -> dict:
    if not len(times_ms):
        return {**{f"p{q}_ms": math.nan for q in PERCENTILES}, "mean_ms": math.nan,
                "max_ms": math.nan}
    # nearest rank, as locust does: a reported p95 is a latency some request really had
    values = np.percentile(times_ms, PERCENTILES, method="inverted_cdf")
    return {**{f"p{q}_ms": float(v) for q, v in zip(PERCENTILES, values)},
            "mean_ms": float(times_ms.mean()), "max_ms": float(times_ms.max())}


def step_summary(requests: pd.DataFrame, stages: pd.DataFrame, *, settle_s: float | None = None,
                 cpu: pd.DataFrame | None = None, include_warmup: bool = False) -> pd.DataFrame:
    """One row per load step: the requests that *started* inside the step's window
    [start + settle, end), so neither the warm-up nor a step's ramp counts.

    Columns: phase, step, users, window_s, requests, failures, error_rate, rps, p50_ms, p95_ms,
    p99_ms, mean_ms, max_ms, concurrency (Little's law: rps x mean latency, the requests in
    flight on average) and, when `cpu` is given, generator_cpu_pct and generator_saturated."""
    settle = default_settle_s(stages) if settle_s is None else float(settle_s)
    rows = []
    for stage in stages.itertuples(index=False):
        if stage.phase != "step" and not include_warmup:
            continue
        start = stage.start_s + (settle if stage.phase == "step" else 0.0)
        end = stage.end_s
        window = max(1e-9, end - start)
        inside = requests[(requests["start_s"] >= start) & (requests["start_s"] < end)]
        count, failures = len(inside), int((~inside["ok"]).sum())
        row = {"phase": stage.phase, "step": int(stage.step), "users": int(stage.users),
               "window_start_s": start, "window_end_s": end, "window_s": window,
               "requests": count, "failures": failures,
               "error_rate": failures / count if count else 0.0, "rps": count / window,
               **_latency_figures(inside["response_time_ms"].to_numpy(dtype=float))}
        row["concurrency"] = row["rps"] * row["mean_ms"] / 1000 if count else 0.0
        if cpu is not None:
            row.update(cpu_in_window(cpu, start, end))
        rows.append(row)
    return pd.DataFrame(rows)


def endpoint_summary(requests: pd.DataFrame, start_s: float = 0.0,
                     end_s: float = math.inf) -> pd.DataFrame:
    """Per endpoint (locust's grouped names) over a window: the mix and its latencies."""
    inside = requests[(requests["start_s"] >= start_s) & (requests["start_s"] < end_s)]
    rows = []
    for (method, name), group in inside.groupby(["method", "name"], sort=True):
        failures = int((~group["ok"]).sum())
        rows.append({"method": method, "name": name, "requests": len(group),
                     "share": len(group) / len(inside), "failures": failures,
                     "error_rate": failures / len(group),
                     **_latency_figures(group["response_time_ms"].to_numpy(dtype=float))})
    return pd.DataFrame(rows)


def latency_over_time(requests: pd.DataFrame, bin_s: float = 1.0) -> pd.DataFrame:
    """Exact per-interval figures from the request log: t_s (bin start), rps, p50/p95/p99_ms,
    failures. Finer and exact where the history CSV smooths over ten seconds."""
    if requests.empty:
        return pd.DataFrame(columns=["t_s", "requests", "rps", "failures", "p50_ms",
                                     "p95_ms", "p99_ms"])
    bins = np.floor(requests["start_s"] / bin_s) * bin_s
    rows = []
    for t, group in requests.groupby(bins, sort=True):
        figures = _latency_figures(group["response_time_ms"].to_numpy(dtype=float))
        rows.append({"t_s": float(t), "requests": len(group), "rps": len(group) / bin_s,
                     "failures": int((~group["ok"]).sum()),
                     **{f"p{q}_ms": figures[f"p{q}_ms"] for q in PERCENTILES}})
    return pd.DataFrame(rows)


# --- the generator's own CPU ------------------------------------------------------------------

def cpu_in_window(cpu: pd.DataFrame, start_s: float, end_s: float,
                  threshold_pct: float = GENERATOR_SATURATION_PCT) -> dict:
    inside = cpu[(cpu["t_s"] >= start_s) & (cpu["t_s"] < end_s)]
    if inside.empty:
        return {"generator_cpu_pct": math.nan, "generator_saturated": False,
                "machine_cpu_pct": math.nan}
    mean = float(inside["cpu_pct"].mean())
    machine = (float(inside["machine_cpu_pct"].mean()) if "machine_cpu_pct" in inside
               else math.nan)
    return {"generator_cpu_pct": mean, "generator_saturated": mean >= threshold_pct,
            "machine_cpu_pct": machine}


def generator_verdict(cpu: pd.DataFrame, start_s: float = -math.inf, end_s: float = math.inf,
                      threshold_pct: float = GENERATOR_SATURATION_PCT) -> dict:
    """Was the load generator the bottleneck? Looks at the samples in a window (the measured
    part of a run): saturated when their mean, or the 90th percentile of two-sample
    averages (a sustained second, not one busy sample), reaches the threshold."""
    window = cpu[(cpu["t_s"] >= start_s) & (cpu["t_s"] < end_s)]
    inside = window["cpu_pct"]
    if inside.empty:
        return {"generator_cpu_mean_pct": math.nan, "generator_cpu_p90_pct": math.nan,
                "generator_cpu_max_pct": math.nan, "machine_cpu_mean_pct": math.nan,
                "generator_saturated": False}
    smoothed = inside.rolling(2, min_periods=1).mean()
    mean, p90 = float(inside.mean()), float(smoothed.quantile(0.9))
    machine = (float(window["machine_cpu_pct"].mean()) if "machine_cpu_pct" in window
               else math.nan)
    return {"generator_cpu_mean_pct": mean, "generator_cpu_p90_pct": p90,
            "generator_cpu_max_pct": float(inside.max()), "machine_cpu_mean_pct": machine,
            "generator_saturated": bool(mean >= threshold_pct or p90 >= threshold_pct)}


# --- the saturation point ---------------------------------------------------------------------

@dataclass(frozen=True)
class Saturation:
    """Where the system stopped scaling. `last_good_*` is the highest load that still scaled
    (every step up to it grew throughput at least `efficiency` as fast as the load and kept
    p95 within `latency_factor` of the lightest load); `knee_*` the first step that did not."""
    reached: bool
    last_good_users: int | None
    last_good_rps: float | None
    knee_users: int | None
    knee_rps: float | None
    peak_rps: float
    peak_users: int
    reason: str

    def as_dict(self):
        return dict(self.__dict__)


def find_saturation(steps: pd.DataFrame, *, efficiency: float = 0.5,
                    latency_factor: float = 2.0, x: str = "users") -> Saturation:
    """The saturation point of a step-load: the first step where throughput stops growing with
    the load (its relative gain is below `efficiency` times the relative gain in users) while
    latency climbs (p95 above `latency_factor` times the lightest step's p95), or where either
    alone is extreme (throughput falls, or p95 beyond 5 x `latency_factor`)."""
    ordered = steps.sort_values(x).reset_index(drop=True)
    peak = ordered.loc[ordered["rps"].idxmax()]
    base_p95 = float(ordered.loc[0, "p95_ms"])
    for i in range(1, len(ordered)):
        before, now = ordered.loc[i - 1], ordered.loc[i]
        load_gain = now[x] / before[x] - 1
        rps_gain = now["rps"] / before["rps"] - 1 if before["rps"] else 0.0
        scaling = rps_gain / load_gain if load_gain > 0 else 1.0
        slow = now["p95_ms"] > latency_factor * base_p95
        reason = None
        if scaling < efficiency and slow:
            reason = (f"from {int(before[x])} to {int(now[x])} users throughput grew "
                      f"{rps_gain:+.0%} for {load_gain:+.0%} load while p95 rose to "
                      f"{now['p95_ms']:.0f} ms ({now['p95_ms'] / base_p95:.1f}x the lightest "
                      f"step)")
        elif rps_gain < -0.05:
            reason = (f"throughput fell {rps_gain:.0%} from {int(before[x])} to {int(now[x])} "
                      "users")
        elif now["p95_ms"] > 5 * latency_factor * base_p95:
            reason = f"p95 reached {now['p95_ms']:.0f} ms at {int(now[x])} users"
        if reason:
            return Saturation(True, int(before[x]), float(before["rps"]), int(now[x]),
                              float(now["rps"]), float(peak["rps"]), int(peak[x]), reason)
    last = ordered.iloc[-1]
    return Saturation(False, int(last[x]), float(last["rps"]), None, None, float(peak["rps"]),
                      int(peak[x]), "throughput still grew with the load at the highest step")


def failures_below_saturation(steps: pd.DataFrame, saturation: Saturation,
                              requests: pd.DataFrame | None = None) -> int:
    """Failed requests at loads up to the last one that still scaled (the target is zero).
    With the request log, every failure that started before that step ended counts, those
    in the warm-up and in each step's ramp too (a log-in that fails while users arrive is a
    failure, even though the ramp is left out of the step's latency figures); without it,
    only the steps' measured windows."""
    if saturation.last_good_users is None:
        return 0
    good = steps[steps["users"] <= saturation.last_good_users]
    if requests is None:
        return int(good["failures"].sum())
    end = float(good["window_end_s"].max())
    return int((~requests.loc[requests["start_s"] < end, "ok"]).sum())


def run_totals(requests: pd.DataFrame) -> dict:
    """The whole run's counts, warm-up and ramps included: what the step rows leave out."""
    failed = requests[~requests["ok"]]
    return {"requests": int(len(requests)), "failures": int(len(failed)),
            "error_rate": float(len(failed) / len(requests)) if len(requests) else 0.0,
            "failures_by_error": {f"{name}: {error}": int(count) for (name, error), count in
                                  failed.groupby(["name", "error"]).size()
                                  .sort_values(ascending=False).head(10).items()}}


# --- wrk ---------------------------------------------------------------------------------------

_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_SIZE = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}


def duration_ms(text: str) -> float:
    """wrk's durations ("512.00us", "1.20ms", "2.00s", "1.00m") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(text: str) -> dict:
    """wrk's report with --latency (and, if present, the JSON line that lab/wrk_report.lua
    prints in done()) as one flat dict: rps, requests, duration_s, mean_ms, stdev_ms, max_ms,
    p50/p75/p90/p99_ms, non_2xx, socket errors, transfer_bytes_per_s; p95_ms and p99_9_ms
    come only from the Lua report (wrk's own table stops at 50/75/90/99)."""
    result: dict = {}
    match = re.search(r"Running (\S+) test @ (\S+)", text)
    if match:
        result["test_duration"] = match.group(1)
        result["url"] = match.group(2)
    match = re.search(r"(\d+) threads and (\d+) connections", text)
    if match:
        result["threads"], result["connections"] = int(match.group(1)), int(match.group(2))
    match = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
    if match:
        result["mean_ms"], result["stdev_ms"], result["max_ms"] = (
            duration_ms(value) for value in match.groups())
    for percent, value in re.findall(r"^\s*(50|75|90|99)%\s+(\S+)", text, re.M):
        result[f"p{percent}_ms"] = duration_ms(value)
    match = re.search(r"(\d+) requests in ([\d.]+\w+), ([\d.]+)(\w+) read", text)
    if match:
        result["requests"] = int(match.group(1))
        result["duration_s"] = duration_ms(match.group(2)) / 1000
        result["bytes_read"] = float(match.group(3)) * _SIZE[match.group(4)]
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      text)
    errors = dict(zip(("connect", "read", "write", "timeout"),
                      (int(v) for v in match.groups()))) if match else {}
    for kind in ("connect", "read", "write", "timeout"):
        result[f"socket_errors_{kind}"] = errors.get(kind, 0)
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    result["non_2xx"] = int(match.group(1)) if match else 0
    match = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if match:
        result["rps"] = float(match.group(1))
    match = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", text)
    if match:
        result["transfer_bytes_per_s"] = float(match.group(1)) * _SIZE[match.group(2)]
    match = re.search(r"^WRK_JSON (\{.*\})\s*$", text, re.M)
    if match:
        extra = json.loads(match.group(1))
        for key, value in extra.items():
            result[key] = value
    errors_total = sum(result[f"socket_errors_{kind}"] for kind in
                       ("connect", "read", "write", "timeout")) + result["non_2xx"]
    result["errors"] = errors_total
    if result.get("requests"):
        result["error_rate"] = errors_total / result["requests"]
    return result
