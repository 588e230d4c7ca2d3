"""Echo-state-network hyperparameter tuning on Lorenz-63, scored by valid prediction time.

The task (``esn_lorenz_vpt``) trains a leaky echo-state network with a ridge
readout on a Lorenz-63 series and asks for the five hyperparameters that make
its free-running forecasts stay valid longest.

- **Data** (made once per process, deterministic): Lorenz-63 ``(10, 28, 8/3)``
  integrated by RK4 (``dt = 0.01``, ``benchmarks.dynamics``), sampled every
  0.02 time units after a spin-up of 20, standardized with the training mean
  and standard deviation; 5000 training steps, then 10 test windows.
- **Model**: ``n_units = 300`` tanh units, ``r <- (1 - a) r + a tanh(W r +
  W_in u + b)``; ``W`` has uniform ``[-1, 1]`` weights kept with probability
  ``density`` and is rescaled to ``spectral_radius``; ``W_in`` is dense uniform
  ``[-1, 1]`` times ``input_scaling``; ``b`` uniform ``[-1, 1]``. All random
  draws come from ``reservoir_seed`` (fixed), so an evaluation is a
  deterministic function of the hyperparameters. The readout maps ``[1, r, r^2]``
  to the next state by ridge regression after a 100-step wash-out; the penalty
  is ``ridge`` times the mean diagonal of the Gram matrix (scale-free). Its
  lower bound, 1e-10, keeps the fit above float64 rounding: at 1e-12 the BLAS
  thread count moved the objective by up to 0.07, at 1e-14 by up to 11
  Lyapunov times (an absolute penalty of 3.5e-11 was below the Gram matrix's
  resolution and made the value depend on the machine's summation order).
- **Metric**: each test window is teacher-forced for 100 steps, then the
  network runs on its own predictions for 20 Lyapunov times (1105 steps,
  ``lambda_max = 0.9056``). The valid prediction time of a window is the time
  until the error ``sqrt(mean over coordinates of (pred - true)^2)`` (standardized
  units) first exceeds 0.4, in Lyapunov times; the objective is its mean over
  the 10 windows, in ``[0, 20]``, to **maximize**. Linear algebra runs on one
  BLAS thread, so the value does not depend on the thread count. The horizon stays at 20
  Lyapunov times: beyond 15-20, VPT measures agreement with the RK4
  discretization rather than with the Lorenz flow (Hurley and Shaheen, 2025);
  the reference configuration reaches it in 1 of the 10 windows.
- **Optimum**: unknown; ``optimal_value`` is a frozen reference, 12.197 (the
  best value of the reference run described at
  ``EchoStateLorenzVPT.optimal_value``; random configurations: median 1.9,
  90th percentile 6.4), ``optimum_is_exact = False``.
- **Cost**: about 0.24 s per evaluation on one core (training dominates).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from bayesopt.space import Float
from benchmarks.base import Task, register
from benchmarks.dynamics import lorenz63, rk4

__all__ = ["EchoStateLorenzVPT", "lorenz_series"]

LYAPUNOV = 0.9056  # largest Lyapunov exponent of Lorenz-63 at (10, 28, 8/3)
SAMPLE_DT = 0.02
N_TRAIN = 5000
WASHOUT = 100
N_WINDOWS = 10
WARMUP = 100
HORIZON_LYAPUNOV = 20.0
HORIZON = math.ceil(HORIZON_LYAPUNOV / (LYAPUNOV * SAMPLE_DT))  # 1105 steps
THRESHOLD = 0.4


@functools.lru_cache(maxsize=2)
def lorenz_series(n_steps: int, x0: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """A Lorenz-63 series sampled every 0.02 time units after a spin-up of 20.

    Args:
        n_steps: Number of samples.
        x0: Initial state of the spin-up.

    Returns:
        ``n_steps x 3`` (read-only; cached per process).
    """
    theta = np.array([10.0, 28.0, 8.0 / 3.0])
    x = rk4(lorenz63, np.array([x0]), theta, 0.01, 2000, 2000)[-1]
    series = rk4(lorenz63, x, theta, 0.01, 2 * n_steps, 2)[:, 0]
    series.flags.writeable = False
    return series


@register("esn_lorenz_vpt")
class EchoStateLorenzVPT(Task):
    """Tune a 300-unit echo-state network to forecast Lorenz-63; maximize VPT (Lyapunov times).

    Parameters (5-D): ``spectral_radius`` in [0.1, 2] (log), ``input_scaling`` in
    [0.01, 10] (log), ``leak_rate`` in [0.05, 1], ``ridge`` in [1e-10, 1e-2]
    (log, relative to the mean feature energy), ``density`` in [0.01, 0.5]
    (log). See the module docstring for the data, the model and the metric.

    Args:
        n_units: Reservoir size.
        reservoir_seed: Seed of every random draw of the network.
        noise_std: Gaussian noise added to every evaluation (``Task``).
        seed: Seed of that evaluation noise.
        name: Overrides the registry name.
    """

    direction = "maximize"
    optimum_is_exact = False
    eval_seconds = 0.24  # CPU seconds per evaluation, measured on one core
    # Frozen reference (2026-11-26, n_units 300, reservoir_seed 0): the best of about
    # 1200 evaluations of this objective: 256 scrambled Sobol points (scipy, seed 0;
    # log scales encoded in log space; best 9.39, median 1.86, 90th percentile 6.43),
    # the 10 best points of an earlier 1950-evaluation run (absolute ridge: best
    # 10.35 here), three Nelder-Mead runs of 150 evaluations from the best three
    # (best 11.73), and one of 250 in the four other parameters with the ridge at
    # its lower bound, where every good configuration sits. Not a proven optimum.
    # Computed with one BLAS thread, as every evaluation is (with two threads the same
    # point scored 12.170: a window valid for nearly the whole horizon amplifies the
    # rounding of the readout).
    optimal_value = 12.197056
    optimal_params = [
        {
            "spectral_radius": 0.30756694464339546,
            "input_scaling": 0.4310979538482224,
            "leak_rate": 0.3165183716075678,
            "ridge": 1e-10,
            "density": 0.11462315549122863,
        }
    ]

    def __init__(
        self,
        n_units: int = 300,
        reservoir_seed: int = 0,
        noise_std: float = 0.0,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(noise_std=noise_std, seed=seed, name=name)
        cls = type(self).__name__
        if isinstance(n_units, bool) or not isinstance(n_units, int) or n_units < 2:
            raise ValueError(f"{cls}: n_units must be an integer >= 2, got {n_units!r}.")
        self.n_units, self.reservoir_seed = n_units, int(reservoir_seed)
        self.space = {
            "spectral_radius": Float(0.1, 2.0, log=True),
            "input_scaling": Float(0.01, 10.0, log=True),
            "leak_rate": Float(0.05, 1.0),
            "ridge": Float(1e-10, 1e-2, log=True),
            "density": Float(0.01, 0.5, log=True),
        }
        if (n_units, reservoir_seed) != (300, 0):  # the reference holds for the default only
            self.optimal_value, self.optimal_params = None, None
        series = lorenz_series(N_TRAIN + N_WINDOWS * (WARMUP + HORIZON) + 1)
        train = series[: N_TRAIN + 1]
        mean, std = train.mean(axis=0), train.std(axis=0)
        self._data = (series - mean) / std
        rng = np.random.default_rng(self.reservoir_seed)
        self._w_raw = rng.uniform(-1.0, 1.0, (n_units, n_units))
        self._w_keep = rng.uniform(0.0, 1.0, (n_units, n_units))
        self._w_in = rng.uniform(-1.0, 1.0, (3, n_units))
        self._bias = rng.uniform(-1.0, 1.0, n_units)

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """Mean valid prediction time (Lyapunov times) over the test windows."""
        return float(self.valid_times(params).mean())

    def valid_times(self, params: Mapping[str, Any]) -> np.ndarray:
        """Valid prediction time of each test window, in Lyapunov times (shape ``10``).

        Runs with one BLAS thread: the result then does not depend on the
        machine's thread count (the reference was computed so), and the
        thousands of small matrix products are 4-25 times faster than with
        BLAS threads spinning on a busy machine.
        """
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return self._valid_times(params)

    def _valid_times(self, params: Mapping[str, Any]) -> np.ndarray:
        w = np.where(self._w_keep < params["density"], self._w_raw, 0.0)
        radius = float(np.max(np.abs(np.linalg.eigvals(w))))
        w = w.T * (params["spectral_radius"] / radius if radius > 1e-12 else 1.0)
        w_in = self._w_in * params["input_scaling"]
        leak = float(params["leak_rate"])
        data = self._data

        def step(r: np.ndarray, u: np.ndarray) -> np.ndarray:
            return (1.0 - leak) * r + leak * np.tanh(r @ w + u @ w_in + self._bias)

        # Training: teacher forcing on one long run; readout [1, r, r^2] -> next state.
        states = np.empty((N_TRAIN, self.n_units))
        r = np.zeros(self.n_units)
        for t in range(N_TRAIN):
            r = step(r, data[t])
            states[t] = r
        feats = _features(states[WASHOUT:])
        target = data[WASHOUT + 1 : N_TRAIN + 1]
        gram = feats.T @ feats
        diag = np.diag_indices_from(gram)
        gram[diag] += params["ridge"] * gram[diag].mean()  # relative to the feature energy
        try:
            w_out = np.linalg.solve(gram, feats.T @ target)
        except np.linalg.LinAlgError:
            return np.zeros(N_WINDOWS)

        # Test: all windows in one batch; warm-up with the truth, then free-running.
        begin = N_TRAIN + np.arange(N_WINDOWS) * (WARMUP + HORIZON)
        r = np.zeros((N_WINDOWS, self.n_units))
        for t in range(WARMUP):
            r = step(r, data[begin + t])
        errors = np.empty((HORIZON, N_WINDOWS))
        with np.errstate(all="ignore"):
            for t in range(HORIZON):
                pred = _features(r) @ w_out
                errors[t] = np.sqrt(np.mean((pred - data[begin + WARMUP + t]) ** 2, axis=1))
                r = step(r, np.clip(pred, -1e3, 1e3))
        failed = ~(errors <= THRESHOLD)  # nan counts as failed
        first = np.where(failed.any(axis=0), failed.argmax(axis=0), HORIZON)
        return np.minimum(first * SAMPLE_DT * LYAPUNOV, HORIZON_LYAPUNOV)


def _features(r: np.ndarray) -> np.ndarray:
    """Readout features ``[1, r, r^2]`` of states ``... x n`` -> ``... x (2 n + 1)``."""
    ones = np.ones((*r.shape[:-1], 1))
    return np.concatenate((ones, r, r * r), axis=-1)
