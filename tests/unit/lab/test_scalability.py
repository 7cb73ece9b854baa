"""lab.scalability: fitting the Universal Scalability Law and Amdahl's law, and scaling a fit
to a machine with more cores."""
import math

import numpy as np
import pytest

from lab import scalability as usl


def test_usl_fit_recovers_the_parameters_of_noiseless_points():
    n = np.array([1, 2, 4, 8, 16, 32, 64])
    fit = usl.fit(n, usl.usl(n, 50.0, 0.05, 0.002))
    assert fit.lam == pytest.approx(50.0, rel=1e-3)
    assert fit.sigma == pytest.approx(0.05, rel=1e-2)
    assert fit.kappa == pytest.approx(0.002, rel=1e-2)
    assert fit.r2 == pytest.approx(1.0) and fit.rmse_rps < 1e-3


def test_peak_is_where_the_usl_curve_turns_down():
    fit = usl.fit(*_points(lam=40, sigma=0.1, kappa=0.01))
    expected = math.sqrt((1 - 0.1) / 0.01)
    assert fit.peak_concurrency == pytest.approx(expected, rel=0.02)
    assert fit.predict(fit.peak_concurrency) >= fit.predict(fit.peak_concurrency * 1.2)
    assert fit.peak_throughput == pytest.approx(float(fit.predict(expected)), rel=0.01)


def test_fit_error_is_reported_on_noisy_points():
    n, x = _points(lam=30, sigma=0.08, kappa=0.003)
    noisy = x * (1 + np.random.default_rng(3).normal(0, 0.05, len(x)))
    fit = usl.fit(n, noisy)
    assert 0.8 < fit.r2 < 1.0
    assert fit.rmse_rps > 0 and fit.mape_pct > 0
    assert fit.sigma_se > 0 and fit.kappa_se > 0


def test_amdahl_has_no_peak_only_a_ceiling():
    n = np.array([1, 2, 4, 8, 16])
    fit = usl.fit(n, usl.amdahl(n, 20.0, 0.1), model="amdahl")
    assert fit.kappa == 0 and math.isinf(fit.peak_concurrency)
    assert fit.peak_throughput == pytest.approx(20.0 / 0.1, rel=0.01)


def test_too_few_points_are_refused_and_exact_fits_are_noted():
    with pytest.raises(ValueError):
        usl.fit([1, 2], [10, 19])
    fit = usl.fit([1, 2, 4], [10, 18, 30])
    assert "exact" in fit.notes[0]


def test_a_peak_far_beyond_the_measured_loads_is_noted_as_an_extrapolation():
    n = np.array([1, 2, 3, 4])
    fit = usl.fit(n, usl.usl(n, 10.0, 0.01, 0.0001))
    assert any("extrapolation" in note for note in fit.notes)


def test_more_cores_scale_peak_concurrency_and_throughput_about_linearly():
    fit = usl.fit(*_points(lam=40, sigma=0.05, kappa=0.005))
    bigger = usl.scale_to_cores(fit, 8)
    assert bigger.cores == 8 and bigger.lam == fit.lam
    assert bigger.peak_concurrency == pytest.approx(4 * fit.peak_concurrency, rel=0.1)
    assert 3 < bigger.peak_throughput / fit.peak_throughput <= 4.2
    assert "upper bound" in bigger.notes[-1]


def test_fit_frame_has_one_row_per_fit_with_units_in_its_columns():
    fit = usl.fit(*_points(lam=40, sigma=0.05, kappa=0.005))
    frame = usl.fit_frame([fit, usl.scale_to_cores(fit, 4)])
    assert list(frame["cores"]) == [2, 4]
    assert {"lam", "sigma", "kappa", "r2", "rmse_rps", "peak_concurrency",
            "peak_throughput_rps"} <= set(frame.columns)
    curves = usl.curve_frame([fit], n_max=50, points=20)
    assert len(curves) == 20 and curves["predicted_rps"].max() > 0


def _points(lam, sigma, kappa):
    n = np.array([1, 2, 4, 6, 8, 12, 16, 24, 32])
    return n, usl.usl(n, lam, sigma, kappa)


def test_a_coherency_cost_indistinguishable_from_zero_has_no_peak():
    n = np.array([1, 2, 4, 8, 16])
    fit = usl.fit(n, usl.amdahl(n, 20.0, 0.1))
    assert fit.kappa < 1e-6
    assert math.isinf(fit.peak_concurrency)
    assert fit.peak_throughput == pytest.approx(200, rel=0.02)
