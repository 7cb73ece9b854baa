"""lab.perf's profiles: what a quick and a full run measure, checked without running them."""
from pathlib import Path

import pytest

from lab import perf


def test_a_full_step_load_of_one_configuration_takes_under_two_minutes_of_load():
    shape = perf.get_profile("full").step_shape()
    assert shape.duration_s < 120
    assert len([s for s in shape.stages() if s.phase == "step"]) >= 6  # enough for a USL fit


def test_the_quick_profile_spends_a_few_seconds_per_point():
    quick = perf.get_profile("quick")
    assert quick.step_s <= 5 and quick.compare_s <= 6 and quick.wrk_s <= 5
    assert len([s for s in quick.step_shape().stages() if s.phase == "step"]) >= 4


def test_every_profile_leaves_warm_up_out_and_compares_at_one_load():
    for name in perf.PROFILES:
        profile = perf.get_profile(name)
        assert profile.warmup_s > 0 and profile.compare_warmup_s > 0
        stages = profile.compare_shape().stages()
        assert [s.phase for s in stages] == ["warmup", "step"]
        assert {s.users for s in stages} == {profile.compare_users}


def test_a_profile_field_can_be_overridden_for_one_run():
    profile = perf.get_profile("full", max_users=100, think_time=(0, 0))
    assert profile.max_users == 100 and profile.think_time == (0, 0)
    assert perf.get_profile("full").max_users != 100
    with pytest.raises(KeyError):
        perf.get_profile("huge")


def test_the_cache_experiment_covers_every_mode_of_the_stack():
    from infra.config import CACHE_MODES

    assert set(perf.get_profile("full").cache_modes) == set(CACHE_MODES)


def test_worker_splits_keep_the_same_total_number_of_workers():
    splits = perf.get_profile("full").worker_splits
    assert len({instances * workers for instances, workers in splits}) == 1


def test_profile_parameters_are_plain_values_for_a_notebook():
    values = perf.profile_parameters("quick")
    assert values["name"] == "quick" and isinstance(values["step_s"], (int, float))


def test_a_recorded_step_load_is_analysed_again_without_running_anything(tmp_path):
    prefix = Path(__file__).parent / "samples" / "paced"
    steps = perf.analyse_step_load(prefix, tmp_path)
    assert list(steps["users"]) == [2, 4, 6, 8, 10]
    assert steps.attrs["saturation"]["reached"] is False  # a paced load on a constant app
    assert steps.attrs["failures_below_saturation"] == 0
    assert steps.attrs["generator"]["generator_saturated"] is False
    assert all(Path(figure).exists() for figure in steps.attrs["figures"])
    assert {endpoint["name"] for endpoint in steps.attrs["endpoints"]} == {"constant"}


# --- time budgets and what each profile runs ------------------------------------------------

def test_each_profile_fits_the_performance_notebooks_time_budget():
    # configured durations plus a stack start each, on a quiet two-core machine
    assert perf.planned_seconds("quick")["total"] <= 35
    assert perf.planned_seconds("full")["total"] <= 330


def test_the_full_profile_runs_every_experiment_with_steps_long_enough_for_a_p99():
    full = perf.get_profile("full")
    assert full.experiments == perf.EXPERIMENTS and full.locust_probe
    assert full.step_s >= 8 and full.compare_s >= 8
    assert set(full.web_counts) == {1, 2, 3} and len(full.worker_splits) >= 3


def test_the_quick_profile_leaves_the_comparisons_to_other_notebooks_and_the_full_profile():
    quick = perf.get_profile("quick")
    assert {"ceiling", "step_load", "crosscheck", "scalability"} <= set(quick.experiments)
    assert not {"cache_modes", "web_instances"} & set(quick.experiments)
    assert set(perf.planned_seconds("quick")) == {*quick.experiments, "total"}


def test_the_layout_split_the_instance_series_already_measured_is_not_planned_twice():
    full = perf.get_profile("full")
    compare = full.compare_warmup_s + full.compare_s
    # one stack for the instance series (3 layouts), two more for the 1x6 and 2x3 splits
    assert perf.planned_seconds(full)["web_instances"] == (
        3 * perf.STACK_START_S + 3 * compare + 2 * compare)


def test_run_all_runs_only_the_profiles_experiments_and_records_which(tmp_path, monkeypatch):
    from contextlib import contextmanager

    import pandas as pd

    called = []

    def fake(name, frame):
        def experiment(*args, **kwargs):
            called.append(name)
            return frame.copy()
        return experiment

    @contextmanager
    def no_stack(*args, **kwargs):
        called.append("stack")
        yield None

    steps = pd.DataFrame({"users": [10, 20, 30, 40], "rps": [20.0, 38, 50, 52],
                          "concurrency": [1.0, 2, 4, 8]})
    monkeypatch.setattr(perf, "running_stack", no_stack)
    monkeypatch.setattr(perf, "ceiling", fake("ceiling", pd.DataFrame(
        {"tool": ["wrk"], "rps": [5000.0]})))
    for name in ("step_load", "crosscheck", "scalability", "cache_modes", "web_instances"):
        monkeypatch.setattr(perf, name, fake(name, steps))
    frames = perf.run_all(tmp_path, "quick")
    assert called == ["ceiling", "stack", "step_load", "crosscheck", "scalability"]
    assert "cache_modes" not in frames and "web_instances" not in frames
    timings = frames["timings"].set_index("experiment")
    assert list(timings.index) == [*perf.EXPERIMENTS, "total"]
    assert not timings.loc["cache_modes", "ran"] and timings.loc["step_load", "ran"]
    assert frames["timings"].attrs["not_run"] == ["cache_modes", "web_instances"]
    saved = pd.read_csv(tmp_path / "perf" / "timings.csv").set_index("experiment")
    assert not saved.loc["web_instances", "ran"]
    assert saved.loc["total", "planned_s"] == perf.planned_seconds("quick")["total"]


def test_sellers_cannot_trip_haproxys_log_in_limit_at_the_full_profiles_peak():
    import math
    import re

    from lab import loadtest

    config = (Path(__file__).parents[3] / "infra" / "haproxy" / "haproxy.cfg").read_text()
    limit = int(re.search(r'LAB_HAPROXY_LOGIN_RATE_LIMIT-(\d+)', config).group(1))
    for name in perf.PROFILES:
        profile = perf.get_profile(name)
        sellers = math.ceil(max(profile.max_users, profile.compare_users)
                            * loadtest.SELLER_SHARE)
        # each seller logs in once; at worst a step's sellers all fail and the next step
        # (10 s or less later) starts as many again
        assert 2 * sellers <= limit, name


def test_the_experiments_database_is_a_copy_of_the_runs_seeded_one(tmp_path):
    from lab.rundir import RunDir

    run = RunDir(tmp_path)
    seeded = run.topic("db") / "seed-200-5000-42.sqlite3"  # lab.stacks.pristine_database's
    seeded.write_bytes(b"seeded once per run")
    database = perf._database(run)
    assert database == tmp_path / "perf" / "marketplace.sqlite3"
    assert database.read_bytes() == b"seeded once per run"
    database.write_bytes(b"written by a load")
    assert perf._database(run).read_bytes() == b"written by a load"  # copied once, then shared
