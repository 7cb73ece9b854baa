"""The laptop-vs-VM analysis (lab.hosting): the comparison table at one load step, the split of
the difference into what the network adds and what the one CPU takes away, the round-trip
summary, and the figure."""
import pandas as pd
import pytest

from lab import hosting


@pytest.fixture(autouse=True)
def tiers_in_process():
    """No database needed (this overrides tests/unit's autouse fixture)."""
    yield


def steps_frame():
    """Two load steps of four scenarios, made so that the network adds 40 ms to the median
    everywhere, one CPU adds 10 ms at 10 users and 60 ms at 20, and they interact at 20."""
    p50 = {("laptop", 10): 10, ("laptop+net", 10): 50, ("vm-local", 10): 20, ("vm", 10): 60,
           ("laptop", 20): 12, ("laptop+net", 20): 52, ("vm-local", 20): 72, ("vm", 20): 132}
    rows = []
    for (scenario, users), value in p50.items():
        rows.append({"scenario": scenario, "users": users, "requests": 100 * users,
                     "failures": 0, "rps": users * (0.5 if scenario.startswith("vm") else 1.0),
                     "p50_ms": value, "p95_ms": 3 * value, "p99_ms": 4 * value})
    return pd.DataFrame(rows)


def test_the_table_compares_every_scenario_at_the_highest_common_step():
    table = hosting.comparison_table(steps_frame())
    assert table["scenario"].tolist() == ["laptop", "laptop+net", "vm-local", "vm"]
    assert set(table["users"]) == {20}
    vm = table.set_index("scenario").loc["vm"]
    assert vm["p50_vs_laptop"] == pytest.approx(132 / 12)
    assert vm["rps_vs_laptop"] == pytest.approx(0.5)
    assert vm["description"] == hosting.SCENARIO_LABELS["vm"]


def test_the_table_can_be_asked_for_another_step():
    assert set(hosting.comparison_table(steps_frame(), users=10)["users"]) == {10}


def test_effects_split_the_difference_into_network_and_cpu():
    effects = hosting.effects(steps_frame(), metrics=("p50_ms",)).set_index("users")
    light, heavy = effects.loc[10], effects.loc[20]
    assert light["network_on_laptop"] == light["network_on_vm"] == 40
    assert light["cpu_without_network"] == light["cpu_with_network"] == 10
    assert light["interaction"] == 0
    assert light["total_change"] == 50
    assert heavy["cpu_without_network"] == 60
    assert heavy["interaction"] == 20  # the network costs more on the busy VM
    assert heavy["total_change"] == (heavy["network_on_laptop"] + heavy["cpu_without_network"]
                                     + heavy["interaction"])


def test_effects_of_a_missing_scenario_are_not_a_number():
    steps = steps_frame()
    effects = hosting.effects(steps[steps["scenario"] != "laptop+net"], metrics=("p50_ms",))
    assert effects["network_on_laptop"].isna().all()
    assert effects["network_on_vm"].notna().all()


def rtt_samples():
    rows = []
    for ms_laptop, ms_relay, ms_vm_local, ms_vm in [(1, 41, 2, 43), (2, 42, 3, 44),
                                                    (3, 43, 4, 45)]:
        rows += [("laptop", "kept-alive", ms_laptop, "laptop"),
                 ("laptop+net", "kept-alive", ms_relay, "laptop"),
                 ("vm-local", "kept-alive", ms_vm_local, "vm"),
                 ("vm", "kept-alive", ms_vm, "vm")]
    return pd.DataFrame(rows, columns=["url_name", "connection", "ms", "path"])


def test_the_round_trip_added_is_the_delayed_median_minus_the_direct_one_on_each_path():
    table = hosting.rtt_table(rtt_samples()).set_index(["path", "url_name"])
    assert table.loc[("laptop", "laptop+net"), "added_median_ms"] == 40
    assert table.loc[("vm", "vm"), "added_median_ms"] == 41
    assert table.loc[("laptop", "laptop"), "added_median_ms"] == 0


def test_the_headline_round_trip_is_the_one_measured_on_the_laptops_path():
    assert hosting.added_rtt_ms(rtt_samples()) == 40


def test_the_figure_is_saved_with_every_scenario(tmp_path):
    path = hosting.plot_comparison(steps_frame(), tmp_path / "hosting.png", rtt_added_ms=40)
    assert path.exists() and path.stat().st_size > 10_000


def test_an_unknown_scenario_is_refused_before_anything_starts():
    with pytest.raises(ValueError, match="unknown scenarios"):
        hosting.compare("unused", scenarios=("laptop", "mainframe"))


def test_rounds_are_summarised_by_their_median_and_their_requests_summed():
    one, two, three = (steps_frame().assign(round=number) for number in (1, 2, 3))
    three["p50_ms"] = three["p50_ms"] + 1000  # one disturbed round does not move the median
    table = hosting.by_scenario(pd.concat([one, two, three]))
    laptop = table[(table["scenario"] == "laptop") & (table["users"] == 10)].iloc[0]
    assert laptop["p50_ms"] == 10
    assert laptop["rounds"] == 3
    assert laptop["requests"] == 3 * 1000


def comparison_result(tmp_path):
    runs = {
        "laptop": {"scenario": "laptop", "round": 1, "wall_s": 100.0, "stack_cpu_s": 150.0,
                   "requests_total": 10_000, "failures_total": 0,
                   "generator": {"generator_cpu_mean_pct": 20.0, "generator_saturated": False},
                   "loadavg_1m_before": 1.0},
        "vm": {"scenario": "vm", "round": 1, "wall_s": 100.0, "stack_cpu_s": 95.0,
               "requests_total": 5_000, "failures_total": 50,
               "relay_cpu_s": 3.0, "loadavg_1m_before": 1.5,
               "generator": {"generator_cpu_mean_pct": 15.0, "generator_saturated": False},
               "vm": {"cpu_s": 95.0, "periods": 1000, "throttled_periods": 250,
                      "throttled_s": 5.0, "oom_kills": 0, "memory_peak_bytes": 700 * 2**20}},
    }
    return hosting.HostingComparison(steps=steps_frame(), rtt=rtt_samples(), runs=runs,
                                     path_method="relay", out_dir=tmp_path)


def test_the_resources_table_says_how_many_cores_each_stack_really_used(tmp_path):
    table = hosting.resources_table(comparison_result(tmp_path)).set_index("run")
    assert table.at["laptop", "stack_cores_used"] == 1.5
    assert table.at["vm", "stack_cores_used"] == 0.95
    assert table.at["vm", "vm_throttled_share"] == 0.25
    assert table.at["vm", "vm_memory_peak_mb"] == 700
    assert pd.isna(table.at["laptop", "vm_throttled_share"])
    assert table.at["laptop", "cpu_ms_per_request"] == 15  # 150 CPU-s over 10,000 requests
    assert table.at["vm", "one_cpu_capacity_rps"] == pytest.approx(1000 / 19)
    assert table.at["vm", "failure_rate"] == 0.01


def test_the_findings_say_whether_the_vms_one_cpu_was_what_held_it_back(tmp_path):
    found = hosting.findings(comparison_result(tmp_path))
    assert found["rtt_added_ms"] == 40
    assert found["cpu_ms_per_request"] == pytest.approx((15 + 19) / 2)
    assert found["vm_throttled_share_max"] == 0.25
    assert found["vm_cpu_limit_was_binding"] is True
    assert found["laptop_cores_used_mean"] == 1.5


def test_runs_with_many_failures_do_not_count_towards_the_cpu_cost_of_a_request(tmp_path):
    result = comparison_result(tmp_path)
    result.runs["vm"]["failures_total"] = 2_000  # 40 % failed: what they cost says little
    assert hosting.findings(result)["cpu_ms_per_request"] == 15


def test_a_saved_comparison_loads_back_as_it_was(tmp_path):
    saved = comparison_result(tmp_path)
    saved.save()
    loaded = hosting.HostingComparison.load(tmp_path)
    assert loaded.path_method == "relay"
    assert loaded.runs["vm"]["vm"]["throttled_periods"] == 250
    pd.testing.assert_frame_equal(loaded.steps, saved.steps, check_dtype=False)
