"""lab.loadstats on recorded output (tests/unit/lab/samples/, made by samples/record.py) and on
small frames built here where a case needs exact numbers."""
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lab import loadstats

SAMPLES = Path(__file__).parent / "samples"
PACED = SAMPLES / "paced"
REFUSED = SAMPLES / "refused"


def frame_of_steps(rows):
    return pd.DataFrame(rows, columns=["users", "rps", "p95_ms", "failures"])


# --- reading locust's files ------------------------------------------------------------------

def test_request_log_matches_the_exact_totals_of_the_json_file():
    requests = loadstats.read_requests(PACED)
    totals = loadstats.read_stats_json(PACED).set_index("name")
    assert len(requests) == totals.loc["Aggregated", "requests"]
    assert (~requests["ok"]).sum() == totals.loc["Aggregated", "failures"]


def test_json_percentiles_agree_with_locusts_own_final_csv():
    totals = loadstats.read_stats_json(PACED).set_index("name")
    final = pd.read_csv(f"{PACED}_stats.csv").set_index("Name")
    for q in (50, 95, 99):
        assert totals.loc["Aggregated", f"p{q}_ms"] == final.loc["Aggregated", f"{q}%"]


def test_histogram_percentile_follows_locusts_rule():
    # 10 requests: 8 at 10 ms, 1 at 20 ms, 1 at 300 ms; locust's p90 is the slowest bucket
    # because int(10 x 0.9) = 9 requests may lie below it
    histogram = {"10": 8, "20": 1, "300": 1}
    assert loadstats.histogram_percentile(histogram, 0.5) == 10
    assert loadstats.histogram_percentile(histogram, 0.8) == 20
    assert loadstats.histogram_percentile(histogram, 0.9) == 300
    assert math.isnan(loadstats.histogram_percentile({}, 0.5))


def test_history_gets_tidy_columns_and_a_time_axis_from_the_schedules_zero():
    meta = loadstats.read_meta(PACED)
    history = loadstats.read_history(PACED, meta["t0_epoch"])
    assert {"t_s", "users", "rps", "p50_ms", "p95_ms", "p99_ms", "requests_total"} <= set(
        history.columns)
    aggregated = history[history["name"] == "Aggregated"]
    # locust writes "N/A" before the first request: read as missing, not as text
    assert aggregated["p95_ms"].dtype == float
    assert aggregated["requests_total"].is_monotonic_increasing
    assert aggregated["t_s"].min() < 1 and aggregated["t_s"].max() > meta["schedule"][-1][
        "end_s"] - 2


def test_failures_of_a_refused_connection_are_counted_with_their_reason():
    requests = loadstats.read_requests(REFUSED)
    assert len(requests) > 0 and not requests["ok"].any()
    assert requests["error"].str.contains("ConnectionRefusedError").all()
    failures = loadstats.read_failures(REFUSED)
    assert failures["occurrences"].sum() == len(requests)


# --- per-step figures -------------------------------------------------------------------------

def test_step_summary_has_one_row_per_measured_step_and_leaves_out_the_warm_up():
    stages = loadstats.stages_frame(loadstats.read_meta(PACED))
    steps = loadstats.step_summary(loadstats.read_requests(PACED), stages,
                                   cpu=loadstats.read_cpu(f"{PACED}_cpu.csv"))
    measured = stages[stages["phase"] == "step"]
    assert list(steps["users"]) == list(measured["users"])
    assert (steps["window_start_s"] > measured["start_s"].to_numpy()).all()
    assert {"rps", "p50_ms", "p95_ms", "p99_ms", "error_rate", "concurrency",
            "generator_cpu_pct", "generator_saturated"} <= set(steps.columns)
    assert (steps["p50_ms"] <= steps["p95_ms"]).all() and (
        steps["p95_ms"] <= steps["p99_ms"]).all()
    assert (steps["failures"] == 0).all()


def test_paced_users_give_throughput_that_grows_with_the_load():
    stages = loadstats.stages_frame(loadstats.read_meta(PACED))
    steps = loadstats.step_summary(loadstats.read_requests(PACED), stages)
    # each user sends about one request per 40 ms think time plus latency
    per_user = steps["rps"] / steps["users"]
    assert per_user.between(10, 30).all()
    assert steps["rps"].is_monotonic_increasing


def test_step_summary_counts_a_request_in_the_step_it_started_in():
    stages = pd.DataFrame([{"phase": "warmup", "step": 0, "users": 1, "start_s": 0, "end_s": 2},
                           {"phase": "step", "step": 1, "users": 1, "start_s": 2, "end_s": 6},
                           {"phase": "step", "step": 2, "users": 2, "start_s": 6,
                            "end_s": 10}])
    requests = pd.DataFrame({"start_s": [1.0, 2.5, 3.0, 4.0, 5.9, 7.0, 8.0, 9.0],
                             "method": "GET", "name": "/",
                             "response_time_ms": [900, 1, 10, 20, 30, 40, 50, 60],
                             "bytes": 10, "ok": [True] * 7 + [False], "error": ""})
    steps = loadstats.step_summary(requests, stages, settle_s=1.0)
    first, second = steps.iloc[0], steps.iloc[1]
    assert first["requests"] == 3  # 2.5 falls in the settle second; 1.0 is the warm-up
    assert first["rps"] == pytest.approx(3 / 3)
    assert first["max_ms"] == 30
    assert second["requests"] == 3 and second["failures"] == 1
    assert second["error_rate"] == pytest.approx(1 / 3)
    # Little's law: 1 request/s x 20 ms mean = 0.02 requests in flight
    assert first["concurrency"] == pytest.approx(1.0 * 0.020)


def test_percentiles_are_latencies_that_some_request_really_had():
    times = np.arange(1, 101, dtype=float)
    figures = loadstats._latency_figures(times)
    assert figures["p95_ms"] == 95 and figures["p99_ms"] == 99 and figures["p50_ms"] == 50


def test_settle_time_is_a_fifth_of_a_step_within_one_and_five_seconds():
    def stages(length):
        return pd.DataFrame([{"phase": "step", "step": 1, "users": 1, "start_s": 0,
                              "end_s": length}])
    assert loadstats.default_settle_s(stages(3)) == 1.0
    assert loadstats.default_settle_s(stages(15)) == 3.0
    assert loadstats.default_settle_s(stages(60)) == 5.0


def test_endpoint_summary_gives_each_names_share_of_the_traffic():
    requests = loadstats.read_requests(PACED)
    endpoints = loadstats.endpoint_summary(requests)
    assert endpoints["share"].sum() == pytest.approx(1.0)
    assert endpoints["requests"].sum() == len(requests)


def test_latency_over_time_bins_every_request_once():
    requests = loadstats.read_requests(PACED)
    timeline = loadstats.latency_over_time(requests, bin_s=1.0)
    assert timeline["requests"].sum() == len(requests)
    assert timeline["t_s"].is_monotonic_increasing


# --- the generator ----------------------------------------------------------------------------

def test_a_generator_far_below_one_core_is_not_flagged():
    verdict = loadstats.generator_verdict(loadstats.read_cpu(f"{PACED}_cpu.csv"), 2, 17)
    assert verdict["generator_cpu_mean_pct"] < loadstats.GENERATOR_SATURATION_PCT
    assert verdict["generator_saturated"] is False


def test_a_generator_busy_for_a_sustained_stretch_is_flagged_saturated():
    samples = [20] * 10 + [95, 97, 96, 99, 98, 95] + [30] * 4
    cpu = pd.DataFrame({"t_s": np.arange(len(samples)) * 0.5, "cpu_pct": samples})
    verdict = loadstats.generator_verdict(cpu)
    assert verdict["generator_cpu_mean_pct"] < loadstats.GENERATOR_SATURATION_PCT
    assert verdict["generator_saturated"] is True


def test_one_busy_sample_does_not_make_a_saturated_generator():
    samples = [20] * 19 + [100]
    cpu = pd.DataFrame({"t_s": np.arange(len(samples)) * 0.5, "cpu_pct": samples})
    assert loadstats.generator_verdict(cpu)["generator_saturated"] is False


# --- the saturation point ---------------------------------------------------------------------

def test_saturation_is_where_throughput_stops_growing_and_latency_climbs():
    steps = frame_of_steps([(10, 18.6, 86, 0), (20, 38.0, 107, 0), (30, 55.6, 139, 0),
                            (40, 73.8, 181, 0), (50, 92.3, 176, 0), (60, 91.1, 604, 3)])
    saturation = loadstats.find_saturation(steps)
    assert saturation.reached
    assert (saturation.last_good_users, saturation.knee_users) == (50, 60)
    assert saturation.peak_rps == pytest.approx(92.3)
    assert loadstats.failures_below_saturation(steps, saturation) == 0


def test_a_load_that_still_scales_has_not_saturated():
    steps = frame_of_steps([(10, 20, 50, 0), (20, 40, 52, 0), (30, 59, 55, 0)])
    saturation = loadstats.find_saturation(steps)
    assert not saturation.reached and saturation.knee_users is None
    assert saturation.last_good_users == 30


def test_falling_throughput_is_saturation_even_before_latency_doubles():
    steps = frame_of_steps([(10, 100, 50, 0), (20, 150, 60, 0), (30, 120, 80, 0)])
    assert loadstats.find_saturation(steps).knee_users == 30


def test_failures_at_loads_that_still_scaled_are_counted():
    steps = frame_of_steps([(10, 20, 50, 2), (20, 40, 52, 0), (30, 41, 400, 9)])
    saturation = loadstats.find_saturation(steps)
    assert saturation.last_good_users == 20
    assert loadstats.failures_below_saturation(steps, saturation) == 2


# --- wrk ---------------------------------------------------------------------------------------

def test_wrk_report_with_the_lua_line_is_read_into_milliseconds():
    result = loadstats.parse_wrk((SAMPLES / "gunicorn_wrk.txt").read_text())
    assert result["threads"] == 1 and result["connections"] == 8
    assert result["rps"] > 100 and result["requests"] > 100
    assert result["p50_ms"] <= result["p75_ms"] <= result["p90_ms"] <= result["p99_ms"]
    assert result["p90_ms"] <= result["p95_ms"] <= result["p99_ms"] <= result["p99_9_ms"]
    assert result["errors"] == 0 and result["error_rate"] == 0
    assert result["duration_s"] == pytest.approx(2.0, abs=0.1)


def test_wrk_counts_errors_and_non_2xx_answers():
    text = """Running 3s test @ http://127.0.0.1:8000/
  2 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.50ms    3.10ms 1.20s    90.00%
    Req/Sec   400.00     20.00   450.00     70.00%
  Latency Distribution
     50%  850.00us
     75%   12.00ms
     90%   20.00ms
     99%    1.10s
  2400 requests in 3.00s, 1.50MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:    800.00
Transfer/sec:    512.00KB
"""
    result = loadstats.parse_wrk(text)
    assert result["p50_ms"] == pytest.approx(0.85)
    assert result["p99_ms"] == pytest.approx(1100)
    assert result["max_ms"] == pytest.approx(1200)
    assert result["errors"] == 10 and result["error_rate"] == pytest.approx(10 / 2400)
    assert result["bytes_read"] == pytest.approx(1.5 * 1024 ** 2)
    assert "p95_ms" not in result  # only the Lua report has it


def test_wrk_durations_in_every_unit():
    assert loadstats.duration_ms("512.00us") == pytest.approx(0.512)
    assert loadstats.duration_ms("2.00s") == 2000
    assert loadstats.duration_ms("1.00m") == 60000
    with pytest.raises(ValueError):
        loadstats.duration_ms("fast")


def test_failures_in_a_ramp_below_saturation_count_against_the_target():
    steps = frame_of_steps([(10, 20, 50, 0), (20, 40, 52, 0), (30, 41, 400, 0)])
    steps["window_end_s"] = [10.0, 20.0, 30.0]
    saturation = loadstats.find_saturation(steps)
    requests = pd.DataFrame({"start_s": [1.0, 10.5, 25.0], "ok": [True, False, False],
                             "name": "/login [post]", "error": ["", "HTTP 503", "HTTP 503"]})
    # the failure at 10.5 s is in step 2's ramp; the one at 25 s is past the last good step
    assert loadstats.failures_below_saturation(steps, saturation) == 0
    assert loadstats.failures_below_saturation(steps, saturation, requests) == 1
    totals = loadstats.run_totals(requests)
    assert totals["failures"] == 2 and totals["error_rate"] == pytest.approx(2 / 3)
    assert totals["failures_by_error"] == {"/login [post]: HTTP 503": 2}
