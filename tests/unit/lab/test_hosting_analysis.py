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
    for direct, delayed in [(1, 41), (2, 42), (3, 43)]:
        rows += [("direct", "kept-alive", direct), ("delayed", "kept-alive", delayed),
                 ("direct", "new", direct), ("delayed", "new", 2 * delayed)]
    return pd.DataFrame(rows, columns=["url_name", "connection", "ms"])


def test_the_round_trip_added_is_the_delayed_median_minus_the_direct_one():
    table = hosting.rtt_table(rtt_samples()).set_index(["connection", "url_name"])
    assert table.loc[("kept-alive", "delayed"), "added_median_ms"] == 40
    assert table.loc[("kept-alive", "direct"), "added_median_ms"] == 0
    assert hosting.added_rtt_ms(rtt_samples()) == 40
    assert hosting.added_rtt_ms(rtt_samples(), "new") == 82


def test_without_a_delayed_scenario_there_is_no_round_trip_to_report():
    assert hosting.rtt_table(pd.DataFrame()).empty
    assert pd.isna(hosting.added_rtt_ms(pd.DataFrame()))


def test_the_figure_is_saved_with_every_scenario(tmp_path):
    path = hosting.plot_comparison(steps_frame(), tmp_path / "hosting.png", rtt_added_ms=40)
    assert path.exists() and path.stat().st_size > 10_000
    with_cpu = hosting.plot_comparison(steps_with_cpu(), tmp_path / "cpu.png", rtt_added_ms=40,
                                       vm_cpus=1.0)
    assert with_cpu.stat().st_size > path.stat().st_size  # a fourth panel


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


def test_a_comparison_without_a_delayed_scenario_loads_back_without_round_trips(tmp_path):
    saved = comparison_result(tmp_path)
    saved.rtt = pd.DataFrame()
    saved.save()
    assert hosting.HostingComparison.load(tmp_path).rtt.empty


# --- the CPU each step really had ---------------------------------------------------------------

def steps_with_cpu(laptop_top_cores=1.6):
    """steps_frame with the per-step CPU figures compare records: at 20 users the VM uses its
    one CPU up (and its quota stops it in most periods) while the laptop uses more."""
    steps = steps_frame()
    vm = steps["scenario"].str.startswith("vm")
    top = steps["users"] == 20
    steps["stack_cores"] = 0.5
    steps.loc[top & ~vm, "stack_cores"] = laptop_top_cores
    steps.loc[top & vm, "stack_cores"] = 0.98
    steps["throttled_share"] = 0.0
    steps.loc[vm, "throttled_share"] = 0.05
    steps.loc[top & vm, "throttled_share"] = 0.6
    steps["generator_cpu_pct"] = 5.0
    steps["machine_cpu_pct"] = 40.0
    steps.loc[top, "machine_cpu_pct"] = 95.0
    return steps


def test_each_steps_cpu_comes_from_the_counters_sampled_across_its_window():
    steps = pd.DataFrame({"users": [10, 20], "window_start_s": [2.0, 6.0],
                          "window_end_s": [4.0, 10.0]})
    t0 = 1000.0
    # one core busy up to 5 s, then two; the quota stops it in every period from 5 s on
    samples = pd.DataFrame({"epoch": t0 + pd.Series([0.0, 5.0, 10.0]),
                            "cpu_s": [0.0, 5.0, 15.0], "periods": [0, 50, 100],
                            "throttled_periods": [0, 0, 50]})
    with_cpu = hosting.step_usage(steps, samples, t0)
    assert with_cpu["stack_cores"].tolist() == pytest.approx([1.0, 2.0])
    assert with_cpu["throttled_share"].tolist() == pytest.approx([0.0, 1.0])


def test_the_table_shows_the_cores_each_scenario_used_at_its_step():
    table = hosting.comparison_table(steps_with_cpu()).set_index("scenario")
    assert table.at["laptop", "stack_cores"] == 1.6
    assert table.at["vm-local", "stack_cores"] == 0.98
    assert table.at["vm", "throttled_share"] == 0.6


def result_with_cpu(tmp_path, **options):
    result = comparison_result(tmp_path)
    result.steps, result.spec = steps_with_cpu(**options), {"cpus": 1.0}
    return result


def test_the_findings_compare_the_cores_of_laptop_and_vm_at_the_top_step(tmp_path):
    found = hosting.findings(result_with_cpu(tmp_path))
    assert found["top_users"] == 20
    assert found["top_laptop_cores"] == 1.6
    assert found["top_vm_cores"] == 0.98
    assert found["vm_saturated"] is True and found["vm_saturated_from_users"] == 20
    assert found["vm_throttled_share_max"] == 0.6
    assert found["vm_cpu_limit_was_binding"] is True
    cores = hosting.os.cpu_count()
    assert found["top_other_cores"] == pytest.approx(0.95 * cores - 1.6)


def test_the_narrative_states_the_measured_figures(tmp_path):
    result = result_with_cpu(tmp_path)
    found = hosting.findings(result)
    text = hosting.narrative(result, found, hosting.effects(result.steps))
    assert "**40 ms** per round trip" in text
    assert "(vm-local) used **0.98 cores** of its 1" in text
    assert "(laptop) **1.60 cores**" in text
    assert "from 20 users on" in text
    assert "the one CPU added +60 ms to the median" in text  # 72 - 12, steps_frame's design
    assert "little more CPU" not in text


def test_the_narrative_says_when_the_laptop_had_no_more_cpu_than_the_vm(tmp_path):
    # the machine was all but fully busy: the laptop's stack could not have had more
    result = result_with_cpu(tmp_path, laptop_top_cores=1.05)
    text = hosting.narrative(result, hosting.findings(result))
    assert "little more CPU than the VM" in text


def test_the_narrative_says_when_the_laptop_had_cpu_to_spare(tmp_path):
    result = result_with_cpu(tmp_path, laptop_top_cores=1.05)
    result.steps["machine_cpu_pct"] = 60.0
    text = hosting.narrative(result, hosting.findings(result))
    assert "it had CPU to spare where the VM had none" in text
    assert "little more CPU" not in text


def test_the_narrative_says_when_the_difference_is_not_split(tmp_path):
    result = result_with_cpu(tmp_path)
    result.steps = result.steps[result.steps["scenario"].isin(["laptop", "vm"])]
    text = hosting.narrative(result, hosting.findings(result), hosting.effects(result.steps))
    assert "2 of the four scenarios (laptop, vm)" in text


def test_scenarios_run_in_an_order_where_neighbours_differ_in_one_factor():
    order = hosting.RUN_ORDER
    assert sorted(order) == sorted(hosting.SCENARIOS)
    for before, after in zip(order, order[1:]):
        differing = [a != b for a, b in zip(hosting.FACTORS[before], hosting.FACTORS[after])]
        assert sum(differing) == 1


def test_the_narrative_tells_a_vm_short_of_cpu_on_a_busy_machine_from_a_light_load(tmp_path):
    result = result_with_cpu(tmp_path)
    vm_top = result.steps["scenario"].str.startswith("vm") & (result.steps["users"] == 20)
    result.steps.loc[vm_top, "stack_cores"] = 0.7
    busy = hosting.narrative(result, hosting.findings(result))
    assert "did not get all of its one CPU either" in busy
    result.steps["machine_cpu_pct"] = 50.0
    light = hosting.narrative(result, hosting.findings(result))
    assert "too light to show what the CPU takes away" in light
