"""Gunther's Universal Scalability Law (and Amdahl's law, its kappa = 0 case) fitted to
measured (concurrency, throughput) points, to say where this machine peaks and what a bigger
one might do.

    X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))

lambda is the throughput of one client alone (requests/s), sigma the share of work that is
serialised (contention: a lock, one busy core, the SQLite writer), kappa the cost of keeping
shared state coherent (crosstalk between clients, which makes throughput fall past the peak).
N is the concurrency: with zero think time a locust user has exactly one request in flight,
so users = N; with think time, Little's law (N = X * R) gives the requests really in flight.

Reference: N. J. Gunther, Guerrilla Capacity Planning (Springer, 2007), chapters 4-6."""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit


# Below this the coherency term is numerical dust (the bounded fit's floor is exactly zero).
KAPPA_NEGLIGIBLE = 1e-9


def usl(n, lam, sigma, kappa):
    n = np.asarray(n, dtype=float)
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def amdahl(n, lam, sigma):
    return usl(n, lam, sigma, 0.0)


@dataclass(frozen=True)
class ScalabilityFit:
    model: str  # "usl" or "amdahl"
    lam: float  # requests/s of a single client
    sigma: float
    kappa: float
    lam_se: float  # standard errors, from the fit's covariance matrix
    sigma_se: float
    kappa_se: float
    r2: float
    rmse_rps: float
    mape_pct: float  # mean absolute percentage error of the fitted throughputs
    points: int
    n_min: float
    n_max: float
    cores: int = 2
    notes: tuple = field(default_factory=tuple)

    def predict(self, n):
        return usl(n, self.lam, self.sigma, self.kappa)

    @property
    def peak_concurrency(self) -> float:
        """N* = sqrt((1 - sigma) / kappa): where throughput peaks; infinite without coherency
        cost (Amdahl: throughput only approaches its ceiling). A kappa the fit could not tell
        from zero counts as zero, rather than a peak at a trillion clients."""
        if self.kappa <= KAPPA_NEGLIGIBLE or self.sigma >= 1:
            return math.inf
        return math.sqrt((1 - self.sigma) / self.kappa)

    @property
    def peak_throughput(self) -> float:
        n = self.peak_concurrency
        if math.isinf(n):
            return self.lam / self.sigma if self.sigma > 0 else math.inf  # Amdahl's ceiling
        return float(self.predict(n))

    def as_dict(self) -> dict:
        data = asdict(self)
        data["notes"] = "; ".join(self.notes)
        data["peak_concurrency"] = self.peak_concurrency
        data["peak_throughput_rps"] = self.peak_throughput
        return data


def fit(concurrency, throughput, model: str = "usl", cores: int = 2) -> ScalabilityFit:
    """Least-squares fit of the USL (or Amdahl) to measured points with
    scipy.optimize.curve_fit, with sigma and kappa kept in their meaningful range [0, 1].
    Reports R squared, RMSE and mean absolute percentage error of the fit, and warns (in
    `notes`) when the points cannot support the model (too few, or no curvature)."""
    n = np.asarray(concurrency, dtype=float)
    x = np.asarray(throughput, dtype=float)
    keep = np.isfinite(n) & np.isfinite(x) & (n > 0)
    n, x = n[keep], x[keep]
    parameters = 3 if model == "usl" else 2
    if len(n) < parameters:
        raise ValueError(f"a {model} fit needs at least {parameters} points, got {len(n)}")
    notes = []
    if len(n) <= parameters:
        notes.append(f"{len(n)} points for {parameters} parameters: the fit is exact, "
                     "its error says nothing")
    # lambda starts at the best per-client throughput seen (the lightest load, usually)
    lam0 = float(np.max(x / n))
    if model == "usl":
        function, p0 = usl, [lam0, 0.05, 0.001]
        bounds = ([0, 0, 0], [np.inf, 1, 1])
    elif model == "amdahl":
        function, p0 = amdahl, [lam0, 0.05]
        bounds = ([0, 0], [np.inf, 1])
    else:
        raise ValueError(f"model must be 'usl' or 'amdahl', not {model!r}")
    with warnings.catch_warnings():
        # with as many points as parameters there is no covariance to estimate: said in notes
        warnings.simplefilter("ignore", OptimizeWarning)
        values, covariance = curve_fit(function, n, x, p0=p0, bounds=bounds, maxfev=20000)
    errors = np.sqrt(np.diag(covariance)) if np.all(np.isfinite(covariance)) else \
        np.full(len(values), np.nan)
    fitted = function(n, *values)
    residual = x - fitted
    total = float(np.sum((x - x.mean()) ** 2))
    r2 = 1 - float(np.sum(residual ** 2)) / total if total > 0 else math.nan
    rmse = float(np.sqrt(np.mean(residual ** 2)))
    mape = float(np.mean(np.abs(residual) / np.where(x > 0, x, np.nan))) * 100
    lam, sigma = float(values[0]), float(values[1])
    kappa = float(values[2]) if model == "usl" else 0.0
    kappa_se = float(errors[2]) if model == "usl" else 0.0
    result = ScalabilityFit(model, lam, sigma, kappa, float(errors[0]), float(errors[1]),
                            kappa_se, r2, rmse, mape, len(n), float(n.min()), float(n.max()),
                            cores, tuple(notes))
    if math.isinf(result.peak_concurrency):
        notes.append("no coherency cost measurable: throughput only approaches lambda/sigma = "
                     f"{result.peak_throughput:.0f}/s (a ceiling, not a peak)")
    elif result.peak_concurrency > 3 * n.max():
        notes.append(f"the predicted peak (N = {result.peak_concurrency:.0f}) is far beyond the "
                     f"measured loads (N <= {n.max():.0f}): an extrapolation")
        result = ScalabilityFit(**{**asdict(result), "notes": tuple(notes)})
    return result


def scale_to_cores(base: ScalabilityFit, cores: int) -> ScalabilityFit:
    """The same site on a machine with `cores` cores instead of base.cores, under stated
    assumptions:

    1. the bottleneck is CPU (on this machine every tier, Redis, HAProxy and the load generator
       share two cores), and work spreads over cores the way it spreads over the instances and
       workers that run on them;
    2. a machine with k times the cores behaves like k of today's machines sharing one load:
       X_k(N) = k * X(N / k). In USL terms lambda stays (one client is not faster), sigma / k
       and kappa / k**2, so the peak concurrency grows k times and the peak throughput about
       k times;
    3. nothing that does not scale with cores (the SQLite writer lock, one Redis thread, the
       disk) becomes the new bottleneck.

    The third rarely holds for long: read the result as an upper bound, not a forecast."""
    k = cores / base.cores
    if k <= 0:
        raise ValueError("cores must be positive")
    note = (f"scaled from {base.cores} to {cores} cores: X_k(N) = k X(N/k) with k = {k:g}; "
            "an upper bound that assumes a CPU bottleneck and no new shared one")
    return ScalabilityFit(base.model, base.lam, base.sigma / k, base.kappa / k ** 2,
                          base.lam_se, base.sigma_se / k, base.kappa_se / k ** 2, base.r2,
                          base.rmse_rps, base.mape_pct, base.points, base.n_min, base.n_max,
                          cores, (*base.notes, note))


def fit_frame(fits) -> pd.DataFrame:
    """One row per fit (models, or the same fit scaled to other machines)."""
    return pd.DataFrame([f.as_dict() for f in fits])


def curve_frame(fits, n_max: float, points: int = 200) -> pd.DataFrame:
    """Predicted throughput against concurrency for each fit, for a plot."""
    n = np.linspace(1, n_max, points)
    return pd.concat([pd.DataFrame({"model": f.model, "cores": f.cores, "concurrency": n,
                                    "predicted_rps": f.predict(n)}) for f in fits],
                     ignore_index=True)
