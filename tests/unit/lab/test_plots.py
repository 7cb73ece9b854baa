"""lab.plots: every figure is saved with a title, labelled axes and a caption, from the
recorded sample run."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from lab import loadstats, plots, scalability as usl

SAMPLES = Path(__file__).parent / "samples"
PACED = SAMPLES / "paced"


@pytest.fixture
def saved(monkeypatch):
    """Every figure a plot function saves, kept for inspection."""
    figures = []
    original = Figure.savefig

    def keep(self, path, **kwargs):
        figures.append(self)
        return original(self, path, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def texts(figure):
    found = [figure._suptitle.get_text()] + [text.get_text() for text in figure.texts]
    for axis in figure.axes:
        found += [axis.get_xlabel(), axis.get_ylabel(), axis.get_title()]
    return found


def assert_explains_itself(figure, *units):
    labels = texts(figure)
    assert figure._suptitle.get_text()
    assert any(text.get_text() for text in figure.texts), "a caption under the figure"
    for axis in figure.axes:
        assert axis.get_ylabel(), "every axis says what it measures"
    for unit in units:
        assert any(unit in label for label in labels), f"some axis is in {unit}"


def steps_of_the_sample():
    stages = loadstats.stages_frame(loadstats.read_meta(PACED))
    return loadstats.step_summary(loadstats.read_requests(PACED), stages), stages


def test_step_load_plot_shows_throughput_and_percentiles_against_users(tmp_path, saved):
    steps, _ = steps_of_the_sample()
    path = plots.step_load(steps, tmp_path / "steps.png", title="Step load",
                           saturation=loadstats.find_saturation(steps))
    assert path.exists() and path.stat().st_size > 10_000
    assert_explains_itself(saved[0], "requests/s", "ms")


def test_latency_over_time_plot_shows_the_generator_cpu(tmp_path, saved):
    _, stages = steps_of_the_sample()
    timeline = loadstats.latency_over_time(loadstats.read_requests(PACED))
    plots.latency_over_time(timeline, stages, tmp_path / "time.png", title="Over time",
                            cpu=loadstats.read_cpu(f"{PACED}_cpu.csv"), settle_s=1)
    assert_explains_itself(saved[0], "ms", "(s)", "% of a core")


def test_comparison_plot_has_a_bar_per_configuration(tmp_path, saved):
    frame = pd.DataFrame({"cache": ["off", "ttl"], "rps": [50.0, 200.0],
                          "p50_ms": [20, 5], "p95_ms": [80, 15], "p99_ms": [120, 30],
                          "error_rate": [0.0, 0.01]})
    plots.comparison(frame, "cache", tmp_path / "bars.png", title="Cache modes",
                     caption="Same load, one mode each.")
    figure = saved[0]
    assert_explains_itself(figure, "requests/s", "ms")
    assert [tick.get_text() for tick in figure.axes[0].get_xticklabels()] == ["off", "ttl"]


def test_scalability_plot_draws_the_fit_and_its_peak(tmp_path, saved):
    n = np.array([1, 2, 4, 8, 16])
    points = pd.DataFrame({"concurrency": n, "rps": usl.usl(n, 30, 0.05, 0.01)})
    fit = usl.fit(points["concurrency"], points["rps"])
    plots.scalability(points, [fit, usl.scale_to_cores(fit, 8)], tmp_path / "usl.png",
                      title="USL")
    assert_explains_itself(saved[0], "requests/s", "concurrency")
    assert len(saved[0].axes[0].get_lines()) >= 2
