"""One short real run of the page cache benchmark (lab/cache_benchmark.py): two stacks, wrk,
the constant app, and the staleness check under writes."""
import pytest

from lab import cache_benchmark as bench


@pytest.mark.slow
def test_a_short_real_run_measures_hits_and_sees_no_stale_read(tmp_path):
    result = bench.run(modes=("off", "invalidate"), duration=1, rounds=1,
                       staleness_modes=("invalidate",), staleness_seconds=2.0,
                       folder=tmp_path, progress=lambda text: None)
    labels = {row["label"] for row in result["rows"]}
    assert {"off via haproxy", "invalidate via haproxy", "invalidate direct",
            "constant direct"} <= labels
    assert all(row["errors"] == 0 for row in result["rows"])
    (staleness,) = result["staleness"]
    assert staleness["reads_after_a_write"] > 0 and staleness["stale_reads"] == 0
    assert result["counters"]["invalidate"]["hit"] > 0
