"""The load-balancing lab's analysis on small frames built here, where each case needs exact
numbers, and its configuration files read as text (the stack tests run them for real)."""
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from lab import haproxy_logs, loadbalancing as lb, loadbalancing_plots as plots, pen
from lab.rundir import RunDir

SAMPLE_LOG = Path(__file__).parent / "samples" / "haproxy_lb.log"

KILL, RESTART, HEALTHY = 1000.0, 1004.0, 1006.0
MARKS = {"start": 998.0, "kill": KILL, "killed": KILL + 0.01, "restart": RESTART,
         "healthy": HEALTHY, "end": 1010.0}


def requests(rows):
    """(epoch, latency_ms, status, error, served_by) rows as a ClosedLoop frame."""
    frame = pd.DataFrame(rows, columns=["epoch", "latency_ms", "status", "error", "served_by"])
    frame["t_s"] = frame["epoch"] - MARKS["start"]
    frame["path"], frame["user"] = "/", 0
    return frame[lb.REQUEST_COLUMNS]


def naive_like():
    return requests([
        (999.0, 10, 200, "", "web1"), (999.5, 20, 200, "", "web2"),
        (1000.5, 3000, 503, "", ""),  # stalled on the dead web1, then refused
        (1001.0, 12, 200, "", "web2"),
        (1001.5, 5, 0, "RemoteProtocolError", ""),
        (1005.0, 2500, 200, "", "web1"),  # web1's port open again before it is healthy
        (1007.0, 15, 200, "", "web1"),
    ])


def test_failover_metrics_count_client_errors_by_kind_and_when_the_client_saw_them():
    metrics = lb.failover_metrics(naive_like(), MARKS, balancer="naive")
    assert metrics["requests"] == 7 and metrics["errors"] == 2
    assert metrics["errors_by_kind"] == {"503": 1, "RemoteProtocolError": 1}
    # the 503 was sent 0.5 s after the kill and answered 3 s later
    assert metrics["first_error_after_kill_s"] == 1.505
    assert metrics["last_error_after_kill_s"] == 3.5
    assert metrics["stalls_over_1s"] == 2
    assert metrics["p99_outage_ms"] > 2900 and metrics["max_before_ms"] == 20
    assert metrics["rps"] == round(7 / 12, 1)


def test_without_stats_or_log_the_balancers_view_is_unknown_but_the_clients_is_not():
    metrics = lb.failover_metrics(naive_like(), MARKS)
    assert metrics["marked_down_after_kill_s"] is None
    assert metrics["marked_up_after_healthy_s"] is None
    # the first good answer from web1 after the restart command, even before it was healthy
    assert metrics["served_again_after_restart_s"] == 1.0
    assert metrics["served_again_after_healthy_s"] == -1.0
    assert metrics["restart_to_healthy_s"] == 2.0
    assert metrics["run_end_after_healthy_s"] == 4.0


def test_haproxys_state_changes_come_from_its_log_before_its_polled_stats():
    events = pd.DataFrame([
        {"received_epoch": KILL + 0.3, "server": "web1", "state": "DOWN"},
        {"received_epoch": HEALTHY + 0.4, "server": "web1", "state": "UP"},
        {"received_epoch": KILL + 0.1, "server": "web2", "state": "DOWN"},  # another server
    ])
    poll = pd.DataFrame([
        {"epoch": KILL + 0.2, "server": "web1", "status": "UP 1/2"},
        {"epoch": KILL + 0.35, "server": "web1", "status": "DOWN"},
        {"epoch": HEALTHY + 0.3, "server": "web1", "status": "DOWN 1/2"},
        {"epoch": HEALTHY + 0.45, "server": "web1", "status": "UP"},
    ])
    both = lb.failover_metrics(naive_like(), MARKS, events=events, poll=poll)
    assert both["marked_down_after_kill_s"] == 0.3
    assert both["marked_up_after_healthy_s"] == 0.4
    polled = lb.failover_metrics(naive_like(), MARKS, poll=poll)
    assert polled["marked_down_after_kill_s"] == 0.35  # "UP 1/2" is still up
    assert polled["marked_up_after_healthy_s"] == 0.45  # "DOWN 1/2" is still down


def test_haproxys_log_and_stats_count_the_retries_the_client_never_saw():
    logged = haproxy_logs.requests_frame(SAMPLE_LOG.read_text().splitlines())
    stats = pd.DataFrame([{"when": "before", "svname": "BACKEND", "wretr": 1, "wredis": 4,
                           "econ": 0, "eresp": 0},
                          {"when": "after", "svname": "BACKEND", "wretr": 3, "wredis": 9,
                           "econ": 2, "eresp": 0}])
    metrics = lb.failover_metrics(naive_like(), MARKS, logged=logged, stats=stats)
    assert metrics["haproxy_logged"] == 8
    assert metrics["haproxy_retried"] == 4 and metrics["haproxy_redispatched"] == 2
    assert metrics["haproxy_errors"] == 4  # two 503s and two 429s
    assert (metrics["stats_wretr"], metrics["stats_wredis"], metrics["stats_econ"]) == (2, 5, 2)


def test_a_client_error_is_no_answer_or_a_status_outside_2xx_and_3xx():
    frame = requests([(1, 1, 200, "", "a"), (2, 1, 302, "", "a"), (3, 1, 404, "", "a"),
                      (4, 1, 0, "ConnectError", ""), (5, 1, 503, "", "")])
    assert list(lb.is_error(frame)) == [False, False, True, True, True]
    assert list(lb.error_kind(frame[lb.is_error(frame)])) == ["404", "ConnectError", "503"]
    summary = lb.client_summary(frame, seconds=2)
    assert (summary["requests"], summary["errors"], summary["rps"]) == (5, 3, 2.5)


def test_spread_is_the_largest_distance_from_an_equal_share():
    per_server = pd.DataFrame([
        {"scenario": "s", "server": "web1", "requests": 20},
        {"scenario": "s", "server": "web2", "requests": 40},
        {"scenario": "s", "server": "web3", "requests": 40},
        {"scenario": "s", "server": "<NOSRV>", "requests": 7},
        {"scenario": "other", "server": "web1", "requests": 99},
    ])
    spread = lb.spread(per_server, "s")
    assert spread["shares"] == {"web1": 0.2, "web2": 0.4, "web3": 0.4}
    assert spread["max_deviation_pts"] == 13.3


def test_the_login_limit_is_read_from_haproxy_cfg_unless_the_variable_is_set():
    assert lb.configured_login_limit() == (20, 10)
    assert lb.configured_login_limit(env={lb.LOGIN_LIMIT_VARIABLE: "3"}) == (3, 10)


def test_a_burst_summary_counts_what_reached_the_site_and_what_haproxy_refused():
    rows = [(0.1 * n, "burst", "POST", 200 if n < 4 else 429) for n in range(6)]
    rows += [(0.25, "burst", "GET", 200), (0.45, "burst", "GET", 200),
             (3.0, "recovery", "POST", 200)]
    frame = pd.DataFrame([{"t_s": t, "phase": phase, "method": method, "path": "/login",
                           "status": status,
                           "answered_by": "HAProxy" if status == 429 else "web1",
                           "retry_after": "10" if status == 429 else None}
                          for t, phase, method, status in rows])
    summary = lb.rate_limit_summary(frame, 4, 10)
    assert (summary["attempts"], summary["posts_let_through"], summary["posts_refused_429"]) == (
        6, 4, 2)
    assert summary["refused_answered_by"] == ["HAProxy"] and summary["retry_after_s"] == 10
    assert summary["app_statuses"] == [200]
    assert (summary["gets"], summary["gets_after_first_429"],
            summary["gets_after_first_429_ok"]) == (2, 1, 1)


def test_pen_balances_round_robin_in_the_foreground_in_front_of_every_server():
    argv = pen.command(9000, ["127.0.0.1:8101", "127.0.0.1:8102"], blacklist_s=5)
    assert argv == ["pen", "-f", "-r", "-b", "5", "127.0.0.1:9000", "127.0.0.1:8101",
                    "127.0.0.1:8102"]


def test_the_naive_config_has_no_health_checks_redispatch_or_layer7_retries():
    naive = lb.NAIVE_CFG.read_text()
    directives = [line.split("#")[0].strip() for line in naive.splitlines()]
    directives = [line for line in directives if line]
    assert not [line for line in directives if re.search(
        r"\bcheck\b|httpchk|redispatch|retry-on|^retries|slowstart", line)]
    assert "balance roundrobin" in directives


def test_the_naive_config_reads_no_variable_the_stack_does_not_give_haproxy():
    names = set(re.findall(r"\$\{(\w+)\}", lb.NAIVE_CFG.read_text()))
    resilient = set(re.findall(r"\$\{(\w+)", lb.RESILIENT_CFG.read_text()))
    assert names and names <= resilient


def test_the_figures_are_written_with_every_balancer_and_scenario(tmp_path):
    per_server = pd.DataFrame([
        {"scenario": scenario, "server": server, "share": share, "Tr_mean_ms": tr}
        for scenario, shares in (("round robin", (0.33, 0.33, 0.34)),
                                 ("leastconn", (0.2, 0.4, 0.4)))
        for server, share, tr in zip(("web1", "web2", "web3"), shares, (50, 10, 12))])
    path = plots.distribution(per_server, tmp_path / "distribution.png", caption="c")
    assert path.stat().st_size > 10_000
    run = lb.FailoverRun("naive", naive_like(), MARKS, pd.DataFrame(), [], pd.DataFrame())
    path = plots.failover({"naive": run, "again": run}, tmp_path / "failover.png",
                          caption="c")
    assert path.stat().st_size > 10_000
    throughput = pd.DataFrame([{"balancer": "HAProxy", "rps": 300, "p50_ms": 20, "p99_ms": 90},
                               {"balancer": "pen", "rps": 320, "p50_ms": 18, "p99_ms": 95}])
    table = pd.DataFrame([{"balancer": "HAProxy, resilient", "errors": 0},
                          {"balancer": "pen", "errors": 4}])
    assert plots.balancers(throughput, table, tmp_path / "b.png", caption="c").exists()
    burst = pd.DataFrame([{"t_s": 0.1, "phase": "burst", "method": "POST", "status": 200},
                          {"t_s": 0.2, "phase": "burst", "method": "POST", "status": 429},
                          {"t_s": 0.3, "phase": "burst", "method": "GET", "status": 200},
                          {"t_s": 2.0, "phase": "recovery", "method": "POST", "status": 200}])
    assert plots.rate_limit(burst, 1, 10, tmp_path / "r.png", caption="c").exists()


@pytest.mark.parametrize("value, expected", [(float("nan"), None), (3, 3)])
def test_the_summary_is_plain_json(tmp_path, value, expected):
    run = RunDir(tmp_path)
    path = lb.save_summary(run, table=pd.DataFrame([{"a": 1, "b": value}]), number=value)
    saved = json.loads(path.read_text())
    assert saved == {"table": [{"a": 1, "b": expected}], "number": expected}
    assert path == tmp_path / lb.TOPIC / "summary.json"


def test_a_part_the_notebook_names_wrongly_is_refused_before_anything_starts(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(ValueError, match="round_robin"):
        lb.distribution(run, None, None, scenarios=["round_robin"], progress=None)
    with pytest.raises(ValueError, match="haproxy"):
        lb.failover(run, None, None, balancers="resilient, haproxy", progress=None)
    assert list(lb.SCENARIOS) == ["roundrobin_even", "roundrobin_skewed", "leastconn_skewed"]
    assert list(lb.BALANCERS) == ["resilient", "naive", "pen"]


def test_a_balancer_is_ready_once_it_answers_and_not_if_it_exits_first():
    import subprocess
    import sys

    asked = []
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as alive:
        try:
            pen.until_ready(alive, lambda client: asked.append(1) or len(asked) == 3, 5, "x")
        finally:
            alive.kill()
    assert len(asked) == 3
    with subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]) as dead:
        dead.wait()
        with pytest.raises(RuntimeError, match="x exited with 3; see x.log"):
            pen.until_ready(dead, lambda client: False, 5, "x", "see x.log")
