"""lab.perf's profiles: what a quick and a full run measure, checked without running them."""
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
    from pathlib import Path

    prefix = Path(__file__).parent / "samples" / "paced"
    steps = perf.analyse_step_load(prefix, tmp_path)
    assert list(steps["users"]) == [2, 4, 6, 8, 10]
    assert steps.attrs["saturation"]["reached"] is False  # a paced load on a constant app
    assert steps.attrs["failures_below_saturation"] == 0
    assert steps.attrs["generator"]["generator_saturated"] is False
    assert all(Path(figure).exists() for figure in steps.attrs["figures"])
    assert {endpoint["name"] for endpoint in steps.attrs["endpoints"]} == {"constant"}
