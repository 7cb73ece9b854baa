"""locust as the lab runs it (a subprocess with the step-load shape, the request log and the
CPU sampler) against the constant WSGI app under gunicorn on a free loopback port, and wrk
against HAProxy answering by itself: the whole path from process to result frame, in about
twenty seconds."""
import pytest

from lab import loadstats, loadtest, traffic

pytestmark = [pytest.mark.slow, pytest.mark.stack]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("servers")
    with loadtest.constant_gunicorn(folder, workers=1, threads=2) as gunicorn:
        port = int(gunicorn.url.rstrip("/").rsplit(":", 1)[1])
        with loadtest.haproxy_ceiling(folder, backend_port=port) as haproxy:
            yield {"gunicorn": gunicorn.url, **haproxy}


def test_a_step_load_yields_one_row_per_step_with_no_failures(servers, tmp_path):
    shape = traffic.StepLoad(step_users=2, step_seconds=3, max_users=4, warmup_seconds=1)
    run = loadtest.run_locust(tmp_path, "probe", servers["gunicorn"], shape,
                              locustfile=loadtest.PROBE_LOCUSTFILE, think_time=(0.01, 0.03))
    for suffix in ("_stats.csv", "_stats_history.csv", "_requests.csv", "_meta.json",
                   "_cpu.csv", ".json", ".html"):
        assert (tmp_path / f"probe{suffix}").exists(), suffix
    steps = run.steps()
    assert list(steps["users"]) == [2, 4]
    assert (steps["failures"] == 0).all() and (steps["rps"] > 20).all()
    totals = run.totals().set_index("name")
    assert totals.loc["Aggregated", "requests"] == len(run.requests())
    assert run.generator()["generator_saturated"] is False


def test_a_page_without_the_expected_content_is_a_failure_even_with_status_200(servers,
                                                                               tmp_path):
    run = loadtest.run_locust(tmp_path, "wrong", servers["alone"],
                              traffic.constant_load(1, 2, warmup_seconds=0),
                              locustfile=loadtest.PROBE_LOCUSTFILE, think_time=(0.05, 0.05),
                              env={"LOAD_PROBE_EXPECT": "not in the answer"})
    requests = run.requests()
    assert len(requests) > 5 and not requests["ok"].any()
    assert requests["error"].str.contains("lacks").all()


def test_wrk_through_the_lab_reports_percentiles_and_its_own_cpu(servers, tmp_path):
    result = loadtest.run_wrk(tmp_path, "alone", servers["alone"], connections=4, seconds=1)
    assert result["rps"] > 500 and result["errors"] == 0
    assert result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"]
    assert result["generator_cpu_mean_pct"] >= 0
    assert loadstats.parse_wrk((tmp_path / "alone_wrk.txt").read_text())["rps"] == result["rps"]
