"""One short real run of the page cache benchmark (lab/cache_benchmark.py): two stacks started
side by side, wrk, the constant app, and the staleness check under writes."""
import pytest

from lab import cache_benchmark as bench


@pytest.mark.slow
def test_a_short_real_run_measures_hits_and_sees_no_stale_read(tmp_path):
    configs = bench.stack_configs(("off", "invalidate"), tmp_path / "stacks")
    with bench.running_stacks(configs, progress=lambda text: None) as stacks:
        result = bench.run(stacks=stacks, duration=1, rounds=1,
                           staleness_modes=("invalidate", "django"), staleness_seconds=2.0,
                           folder=tmp_path, progress=lambda text: None)
        assert all(stack.is_running() for stack in stacks.values())  # the caller's to stop
    assert not any(stack.is_running() for stack in stacks.values())
    labels = {row["label"] for row in result["rows"]}
    assert {"off via haproxy", "invalidate via haproxy", "invalidate direct",
            "constant direct"} <= labels
    assert all(row["errors"] == 0 for row in result["rows"])
    (staleness,) = result["staleness"]  # no django stack: no django staleness run
    assert staleness["reads_after_a_write"] > 0 and staleness["stale_reads"] == 0
    assert result["counters"]["invalidate"]["hit"] > 0
    django = next(target for target in result["targets"]
                  if target["target"].startswith("hits vs django"))
    assert django["note"].startswith("not measured in this profile")
