"""The page cache benchmark's arithmetic: reading wrk's report, the medians, the targets, and
the staleness markers. One short real run is in tests/stack/test_cache_benchmark.py."""
import pytest

from lab import cache_benchmark as bench

# Recorded from wrk 4.1.0 against lab/constant_page.py under gunicorn on this machine.
WRK_OK = """\
Running 2s test @ http://127.0.0.1:18998/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.91ms   13.26ms 116.94ms   88.01%
    Req/Sec     1.29k     0.91k    3.25k    67.50%
  Latency Distribution
     50%    5.13ms
     75%   13.34ms
     90%   25.50ms
     99%   65.34ms
  5187 requests in 2.02s, 1.40MB read
Requests/sec:   2569.34
Transfer/sec:    707.66KB
"""

# Recorded against python -m http.server (404s); the socket error line is added in wrk's
# format, and latencies changed to seconds and microseconds to cover those units.
WRK_ERRORS = """\
Running 2s test @ http://127.0.0.1:18997/missing
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    28.33ms   92.00ms    1.88s    94.81%
    Req/Sec   364.58    187.89     0.88k    77.50%
  Latency Distribution
     50%  573.00us
     75%   13.28ms
     90%   27.97ms
     99%    1.54s
  1463 requests in 2.03s, 743.11KB read
  Socket errors: connect 0, read 3, write 0, timeout 12
  Non-2xx or 3xx responses: 1463
Requests/sec:    721.81
Transfer/sec:    366.63KB
"""


def test_wrk_report_gives_throughput_percentiles_and_no_errors():
    result = bench.parse_wrk(WRK_OK)
    assert result["requests_per_s"] == 2569.34
    assert result["requests"] == 5187 and result["seconds"] == pytest.approx(2.02)
    assert result["latency_ms"] == {"p50": 5.13, "p75": 13.34, "p90": 25.50, "p99": 65.34}
    assert result["latency_mean_ms"] == 9.91 and result["latency_max_ms"] == 116.94
    assert result["non_2xx_3xx"] == 0
    assert result["socket_errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0}


def test_wrk_report_units_and_errors_are_read():
    result = bench.parse_wrk(WRK_ERRORS)
    assert result["latency_ms"]["p50"] == pytest.approx(0.573)
    assert result["latency_ms"]["p99"] == pytest.approx(1540.0)
    assert result["latency_max_ms"] == pytest.approx(1880.0)
    assert result["non_2xx_3xx"] == 1463
    assert result["socket_errors"] == {"connect": 0, "read": 3, "write": 0, "timeout": 12}


def test_something_that_is_not_a_wrk_report_is_refused():
    with pytest.raises(ValueError):
        bench.parse_wrk("wrk: command not found")


def test_wrk_is_only_pointed_at_this_machine():
    command = bench.wrk_command("http://127.0.0.1:8000/", duration=3)
    assert command[:4] == ["wrk", "-t2", "-c16", "-d3s"] and "--latency" in command
    with pytest.raises(ValueError):
        bench.wrk_command("http://example.com/")


def sample(rps, p99, p50=1.0, errors=0, cpu=None):
    return {"requests_per_s": rps, "latency_ms": {"p50": p50, "p99": p99},
            "latency_mean_ms": p50, "requests": int(rps), "non_2xx_3xx": errors,
            "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
            "url": "http://127.0.0.1:1/", "cpu_ms_per_request": cpu}


def test_a_row_is_the_median_of_its_rounds():
    row = bench.summarize("off via haproxy", "off",
                          [sample(40, 600), sample(10, 900, errors=2), sample(50, 500)])
    assert row["requests_per_s"] == 40 and row["p99_ms"] == 600
    assert row["rounds"] == 3 and row["errors"] == 2
    assert bench.summarize("x", "off", [sample(10, 1), sample(20, 3)])["requests_per_s"] == 15


def rows(**rates):
    """Rows named like run() names them, from label=(requests/s, p99 ms[, CPU ms/request])."""
    labels = {"off": "off via haproxy", "hits": "invalidate via haproxy",
              "django": "django via haproxy", "constant": "constant via haproxy",
              "hits_direct": "invalidate direct", "constant_direct": "constant direct"}
    return [bench.summarize(labels[name], name,
                            [sample(*figures[:2], cpu=(figures[2:] or [None])[0])])
            for name, figures in rates.items()]


def by_name(result):
    return {target["target"].split(" (")[0]: target for target in bench.targets(result)}


def test_targets_are_computed_from_the_rows():
    result = {"rows": rows(off=(40, 600), hits=(800, 30), django=(400, 60),
                           constant=(1000, 20)),
              "staleness": [{"mode": "invalidate", "stale_reads": 0},
                            {"mode": "ttl", "stale_reads": 120}]}
    found = by_name(result)
    assert found["home: warm cache vs off, throughput"]["measured"] == 20
    assert found["home: warm cache vs off, p99 latency"]["measured"] == pytest.approx(0.05)
    assert found["hits vs django mode, throughput"]["measured"] == 2
    assert found["hits vs constant bytes, throughput"]["measured"] == 0.8
    assert found["stale reads after a write returned"]["measured"] == 0
    assert all(target["met"] for name, target in found.items()
               if not name.startswith("estimate"))


def test_a_run_of_some_modes_computes_the_targets_it_can_and_names_the_others():
    result = {"config": {"modes": ["off", "invalidate"], "staleness_modes": ["invalidate"]},
              "rows": rows(off=(40, 600), hits=(800, 30), constant=(1000, 20)),
              "staleness": [{"mode": "invalidate", "stale_reads": 0, "reads_after_a_write": 50,
                             "reads": 60, "writes": {"create": 5}, "x_cache": {"HIT": 60}}]}
    found = by_name(result)
    assert found["home: warm cache vs off, throughput"]["measured"] == 20
    assert found["hits vs constant bytes, throughput"]["measured"] == 0.8
    assert found["stale reads after a write returned"]["met"] is True
    django = found["hits vs django mode, throughput"]
    assert django["measured"] is None and django["met"] is None
    assert django["note"] == "not measured in this profile (django not run)"
    assert all(target["note"] is None for name, target in found.items()
               if "django" not in name and not name.startswith("estimate"))
    assert "not measured in this profile (django not run)" in bench.format_result(
        {**result, "targets": bench.targets(result)})


def test_a_staleness_run_left_out_is_named_and_a_failed_measurement_is_not_blamed_on_it():
    result = {"config": {"modes": ["off", "invalidate"], "staleness_modes": []},
              "rows": rows(off=(40, 600)), "staleness": []}
    found = by_name(result)
    assert "invalidate staleness not run" in found["stale reads after a write returned"]["note"]
    # the invalidate stack ran, but its row is missing (its measurement failed)
    assert found["home: warm cache vs off, throughput"]["note"] == "not measured"


def test_the_quick_profile_fits_its_budget_and_the_full_one_measures_every_mode():
    quick, full = bench.get_profile("quick"), bench.get_profile("full")
    # the caching notebook's budgets on a quiet two-core machine: 25 s quick, 120 s full
    assert bench.planned_seconds(quick) <= 25 - 3  # a few seconds for the live demonstration
    assert bench.planned_seconds(full) <= 120 - 10
    assert {"off", "invalidate"} <= set(quick.modes) and "invalidate" in quick.staleness_modes
    assert set(full.modes) == set(bench.MODES) and full.direct and full.rounds >= 3
    assert set(full.staleness_modes) == {"invalidate", "ttl", "django"}


def test_a_notebook_parameter_left_empty_keeps_the_profiles_value():
    profile = bench.get_profile("full", modes="off, invalidate", rounds=None, seconds=None,
                                staleness_seconds=4)
    assert profile.modes == ("off", "invalidate") and profile.staleness_seconds == 4
    assert profile.rounds == bench.PROFILES["full"].rounds
    assert profile.row_count() == 2 + 3  # two modes, the constant app, the two direct rows
    with pytest.raises(ValueError):
        bench.get_profile("quick", modes="off,memcached")


def test_stacks_started_side_by_side_get_ports_of_their_own(tmp_path):
    configs = bench.stack_configs(bench.MODES, tmp_path)
    offsets = [config.port_offset for config in configs.values()]
    assert len(set(offsets)) == len(offsets)
    ports = [port for config in configs.values() for port in config.tcp_ports()]
    assert len(set(ports)) == len(ports)
    assert {config.cache for config in configs.values()} == set(bench.MODES)
    assert len({config.sqlite_path for config in configs.values()}) == len(bench.MODES)


def test_cpu_per_request_gives_estimates_beside_the_measured_ratios():
    result = {"rows": rows(off=(40, 600, 50.0), hits=(800, 30, 1.0), django=(400, 60, 1.2),
                           constant=(1000, 20, 0.6)), "staleness": []}
    found = by_name(result)
    assert found["estimate from server CPU per request: warm cache vs off"]["measured"] == 50
    django = found["estimate from server CPU per request: hits vs django mode"]
    assert django["measured"] == pytest.approx(1.2) and django["met"] is False
    constant = found["estimate from server CPU per request: hits vs constant bytes"]
    assert constant["measured"] == pytest.approx(0.6) and constant["met"] is False


def test_a_missed_target_says_so_and_an_unmeasured_one_is_not_guessed():
    result = {"rows": rows(off=(100, 100), hits=(500, 50)), "staleness": []}
    found = by_name(result)
    assert found["home: warm cache vs off, throughput"]["met"] is False
    assert found["home: warm cache vs off, p99 latency"]["met"] is False
    assert found["hits vs django mode, throughput"] == {
        **found["hits vs django mode, throughput"], "measured": None, "met": None}
    assert found["stale reads after a write returned"]["met"] is None


def test_without_the_proxied_constant_the_direct_rows_are_compared():
    result = {"rows": rows(hits_direct=(700, 10), constant_direct=(1000, 5)), "staleness": []}
    target = next(target for target in bench.targets(result)
                  if target["target"].startswith("hits vs constant"))
    assert target["measured"] == 0.7 and "both direct" in target["target"]


def test_the_report_lists_rows_staleness_and_verdicts():
    result = {"rows": rows(off=(40, 600), hits=(800, 30)),
              "staleness": [{"mode": "invalidate", "stale_reads": 0, "reads_after_a_write": 90,
                             "reads": 100, "writes": {"create": 5, "edit": 5},
                             "x_cache": {"HIT": 60, "MISS": 40}}]}
    result["targets"] = bench.targets(result)
    text = bench.format_result(result)
    assert "invalidate via haproxy" in text and "800" in text
    assert "staleness invalidate: 0 stale of 90" in text
    assert "not measured" in text and ": met" in text


def test_markers_tell_which_write_a_page_shows():
    run = "a1b2c3"
    body = (f"<h3>{bench.marker(run, 'c', 3)} probe</h3><h3>{bench.marker(run, 'c', 12)} "
            f"probe</h3><h1>{bench.marker(run, 'e', 4)} probe</h1>"
            f"<h3>{bench.marker('ffffff', 'c', 99)} other run</h3>")
    assert bench.newest_marker(body, run, "c") == 12
    assert bench.newest_marker(body, run, "e") == 4
    assert bench.newest_marker("<p>nothing</p>", run, "c") == 0


def test_an_unknown_mode_is_refused(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--modes", "off,memcached"])
    assert "memcached" in capsys.readouterr().err


def test_the_staleness_set_up_retries_what_a_busy_machine_makes_fail():
    import httpx

    answers = iter([503, 503, 201])
    client = httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(next(answers), json={})), base_url="http://127.0.0.1")
    assert bench._with_retries(lambda: client.post("/x"), delay=0).status_code == 201
    refused = httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(422, json={})), base_url="http://127.0.0.1")
    with pytest.raises(httpx.HTTPStatusError):
        bench._with_retries(lambda: refused.post("/x"), delay=0)
    taken = httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(409, json={})), base_url="http://127.0.0.1")
    assert bench._with_retries(lambda: taken.post("/x"), delay=0,
                               done_if=lambda response: response.status_code == 409
                               ).status_code == 409
