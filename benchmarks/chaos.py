"""Parameter inference of chaotic flows from a noisy observed trajectory.

Each task hides a chaotic system's true parameters ``theta*`` behind an
observed trajectory and asks for the parameters that reproduce it, scored by a
**multiple-shooting loss**:

1. The observations are made once, in ``__init__``: the system is integrated
   from a fixed initial state with ``theta*`` (spin-up discarded), recorded
   every ``obs_dt`` time units, and every coordinate gets i.i.d. Gaussian noise
   of ``obs_noise`` times its standard deviation over the record, drawn from
   the fixed ``data_seed``. Same task settings, same data, on any machine (only
   elementwise float64 arithmetic).
2. An evaluation restarts ``n_windows`` integrations with the candidate
   ``theta`` from the observed (noisy) state at the start of each window,
   ``stride`` time units apart, integrates each for ``window`` time units
   (all windows batched in one RK4 call, ``benchmarks.dynamics``), and returns
   the mean over windows of the squared error against the observations inside
   the window, each coordinate divided by its variance (a normalized MSE: 0 is
   a perfect match, about 2 is two unrelated points of the attractor). A
   window whose trajectory diverges, or whose error exceeds ``CAP = 4``, costs
   ``CAP``; ``last_diverged`` counts the windows that diverged in the last
   evaluation.

Short windows (about half a Lyapunov time) give a smooth, unimodal landscape
around ``theta*``; long windows (several Lyapunov times) give the classic rugged
trajectory-matching landscape (many local minima along every 1-D slice), kept
as deliberately hard variants under their own ``*_rugged`` names.

**Optimum.** Without observation noise (``obs_noise=0``) the loss is exactly 0
at ``theta*`` (the data come from the same integrator and step):
``optimal_value = 0``, ``optimal_params = [theta*]``, ``optimum_is_exact``.
With noise (1 %, the default of the smooth tasks), the minimum moves slightly
away from ``theta*`` (noisy window starts: an errors-in-variables bias) and
lies below the loss at ``theta*``. ``optimal_value`` is then that **minimum**
(so that regret is never negative), found by ``polish()`` from ``theta*`` and
frozen in ``FROZEN`` for the registered settings (recomputed at construction,
a few CPU seconds, on first use, for other settings); ``optimal_params`` is the polished
minimizer and ``optimum_is_exact`` is ``False`` (a numerical minimum, not a
proof). ``true_params`` keeps ``theta*``, ``value_at_truth`` the loss there,
and ``parameter_error`` measures the distance of a point to ``theta*`` in box
widths. The rugged variants observe **without noise** by default, so their
optimum (0 at ``theta*``) is exact: with noise, the minimum of a rugged loss
cannot be certified (for Lorenz-63 with 1 % noise a local polish from
``theta*`` stopped at 0.088 while Nelder-Mead found a needle at 0.016, against
0.105 at ``theta*`` itself).

========================  ====  ==================  =======  ================  ============
registry name             dim   window (Lyap. t.)   obs.     optimum           ms per eval.
========================  ====  ==================  =======  ================  ============
``lorenz63_param``        3     0.5 (0.45)          1 %      6.8e-4 (frozen)   1.5
``lorenz63_param_rugged`` 3     2 (1.8)             none     0 (exact)         6.4
``rossler_param``         3     3 (0.2)             1 %      2.8e-4 (frozen)   1.7
``rossler_param_rugged``  3     36 (2.6)            none     0 (exact)         21
``lorenz96_forcing_d10``  10    0.3                 1 %      2.6e-4 (frozen)   2.4
``lorenz96_forcing_d40``  40    0.3 (0.5)           1 %      2.7e-4 (frozen)   2.7
========================  ====  ==================  =======  ================  ============

Random points of the box score about 0.04-4 (median 0.8 for Lorenz-63, 0.4
for Rossler, 0.04-0.05 for Lorenz-96).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from bayesopt.space import Float
from benchmarks.base import Task, register
from benchmarks.dynamics import VectorField, lorenz63, lorenz96, rk4, rossler

__all__ = [
    "CAP",
    "Lorenz63Inference",
    "Lorenz63InferenceRugged",
    "Lorenz96Forcing",
    "Lorenz96Forcing40",
    "RosslerInference",
    "RosslerInferenceRugged",
    "ShootingInference",
]

CAP = 4.0
"""Loss of a diverged window (and the largest loss a window can have)."""


class ShootingInference(Task):
    """Infer the parameters of a flow from noisy observations by multiple shooting.

    Subclasses set the system (``field``, ``param_names``, ``true_values``,
    ``bounds``, ``x0``) and the default design (``dt``, ``obs_every``,
    ``window``, ``stride``, ``n_windows``, ``spinup``); see the module
    docstring for the loss and the optimum.

    Args:
        obs_noise: Observation-noise standard deviation as a fraction of each
            coordinate's standard deviation (``>= 0``; class default 0.01).
        window: Length of a shooting window in time units (a multiple of
            ``dt * obs_every``).
        n_windows: Number of windows.
        stride: Time between window starts (``>= window``).
        data_seed: Seed of the observation noise.
        noise_std: Gaussian noise added to every evaluation (``Task``).
        seed: Seed of that evaluation noise.
        name: Overrides the registry name.
    """

    direction = "minimize"
    optimum_is_exact = True
    field: ClassVar[VectorField]
    param_names: ClassVar[tuple[str, ...]] = ()
    true_values: ClassVar[tuple[float, ...]] = ()
    bounds: ClassVar[tuple[tuple[float, float], ...]] = ()
    x0: ClassVar[tuple[float, ...]] = ()
    dt: ClassVar[float] = 0.01
    obs_every: ClassVar[int] = 2
    spinup: ClassVar[float] = 20.0
    time_dependent: ClassVar[bool] = False  # True: field(x, theta, t), a forced flow
    default_obs_noise: ClassVar[float] = 0.01
    default_window: ClassVar[float] = 0.5
    default_n_windows: ClassVar[int] = 20
    default_stride: ClassVar[float] = 1.0
    default_data_seed: ClassVar[int] = 0
    FROZEN: ClassVar[dict[float, tuple[float, tuple[float, ...]]]] = {}
    """``{obs_noise: (minimum, minimizer)}`` at the default design, from ``polish()``."""

    def __init__(
        self,
        obs_noise: float | None = None,
        window: float | None = None,
        n_windows: int | None = None,
        stride: float | None = None,
        data_seed: int | None = None,
        noise_std: float = 0.0,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(noise_std=noise_std, seed=seed, name=name)
        cls = type(self).__name__
        obs_noise = self.default_obs_noise if obs_noise is None else obs_noise
        window = self.default_window if window is None else window
        n_windows = self.default_n_windows if n_windows is None else n_windows
        stride = max(self.default_stride, window) if stride is None else stride
        data_seed = self.default_data_seed if data_seed is None else data_seed
        if not (isinstance(obs_noise, (int, float)) and math.isfinite(obs_noise)) or obs_noise < 0:
            raise ValueError(f"{cls}: obs_noise must be a finite number >= 0, got {obs_noise!r}.")
        if isinstance(n_windows, bool) or not isinstance(n_windows, int) or n_windows < 1:
            raise ValueError(f"{cls}: n_windows must be an integer >= 1, got {n_windows!r}.")
        obs_dt = self.dt * self.obs_every
        per_window = _whole(window, obs_dt)
        per_stride = _whole(stride, obs_dt)
        if per_window is None or per_window < 1:
            raise ValueError(
                f"{cls}: window must be a positive multiple of {obs_dt:g} time units, "
                f"got {window!r}."
            )
        if per_stride is None or per_stride < per_window:
            raise ValueError(
                f"{cls}: stride must be a multiple of {obs_dt:g} time units and >= window "
                f"({window!r}), got {stride!r}."
            )
        self.obs_noise = float(obs_noise)
        self.window, self.n_windows, self.stride = float(window), n_windows, float(stride)
        self.data_seed = int(data_seed)
        self.space = {k: Float(lo, hi) for k, (lo, hi) in zip(self.param_names, self.bounds)}
        self.true_params = dict(zip(self.param_names, map(float, self.true_values)))
        self._make_data(per_window, per_stride)
        self.last_diverged = 0
        self.value_at_truth = self.loss(np.asarray(self.true_values, dtype=float))
        self.last_diverged = 0
        self._set_optimum(window, n_windows, stride, data_seed)

    # --- data and loss ------------------------------------------------------------------
    def _make_data(self, per_window: int, per_stride: int) -> None:
        """Simulate ``theta*``, add the observation noise, cut the windows."""
        theta = np.asarray(self.true_values, dtype=float)
        n_spin = _whole(self.spinup, self.dt)
        clock = 0.0 if self.time_dependent else None
        x = rk4(self.field, np.atleast_2d(self.x0), theta, self.dt, n_spin, n_spin, clock)[-1]
        n_obs = (self.n_windows - 1) * per_stride + per_window
        t_spin = None if clock is None else n_spin * self.dt
        clean = np.vstack([x, rk4(self.field, x, theta, self.dt, n_obs * self.obs_every,
                                  self.obs_every, t_spin)[:, 0]])  # fmt: skip
        self.scale = clean.std(axis=0)
        rng = np.random.default_rng(self.data_seed)
        observed = clean + self.obs_noise * self.scale * rng.standard_normal(clean.shape)
        begin = np.arange(self.n_windows) * per_stride
        self.observed = observed  # (n_obs + 1) x n: the whole record
        self._starts = observed[begin]  # K x n
        self._targets = observed[
            begin[None, :] + np.arange(1, per_window + 1)[:, None]
        ]  # m x K x n
        self._steps = per_window * self.obs_every
        obs_dt = self.dt * self.obs_every
        self._clock = None if clock is None else n_spin * self.dt + begin * obs_dt

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """Scaled prediction errors ``(pred - obs) / scale`` of every window, flattened."""
        pred = rk4(
            self.field, self._starts, theta, self.dt, self._steps, self.obs_every, self._clock
        )
        with np.errstate(all="ignore"):
            return ((pred - self._targets) / self.scale).ravel()

    def loss(self, theta: np.ndarray) -> float:
        """The multiple-shooting loss at a parameter vector ``theta`` (shape ``p``)."""
        pred = rk4(
            self.field, self._starts, theta, self.dt, self._steps, self.obs_every, self._clock
        )
        with np.errstate(all="ignore"):
            per_window = (((pred - self._targets) / self.scale) ** 2).mean(axis=(0, 2))
        bad = ~np.isfinite(per_window)
        self.last_diverged = int(bad.sum())
        return float(np.where(bad, CAP, np.minimum(per_window, CAP)).mean())

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """The noise-free multiple-shooting loss at ``params``."""
        return self.loss(np.array([params[k] for k in self.param_names], dtype=float))

    def parameter_error(self, params: Mapping[str, Any]) -> float:
        """Root-mean-square distance of ``params`` to ``theta*``, in units of the box widths."""
        err = [(params[k] - self.true_params[k]) / (hi - lo) for k, (lo, hi) in
               zip(self.param_names, self.bounds)]  # fmt: skip
        return float(np.sqrt(np.mean(np.square(err))))

    # --- optimum ------------------------------------------------------------------------
    def polish(self) -> tuple[float, dict[str, float]]:
        """Minimize the loss from ``theta*``: Gauss-Newton, then Nelder-Mead (up to 10-D).

        Gauss-Newton (``scipy.optimize.least_squares``, box-bounded) converges
        in a few steps on smooth landscapes; on the rugged variants it stops in
        a shallow dip that Nelder-Mead then leaves for the sharp minimum next
        to ``theta*``.

        Returns:
            The minimum and its minimizer (the values frozen in ``FROZEN``).
        """
        from scipy.optimize import least_squares, minimize

        lo, hi = np.array(self.bounds).T
        truth = np.asarray(self.true_values, dtype=float)
        fit = least_squares(
            self.residuals, truth, bounds=(lo, hi), x_scale=hi - lo,
            ftol=1e-12, xtol=1e-12, gtol=1e-12, max_nfev=100,
        )  # fmt: skip
        theta = min((truth, fit.x), key=self.loss)
        if len(theta) <= 10:
            simplex = theta + np.vstack([np.zeros(len(theta)), np.diag(1e-3 * (hi - lo))])
            fit = minimize(
                self.loss, theta, method="Nelder-Mead", bounds=list(zip(lo, hi)),
                options={"xatol": 1e-10, "fatol": 1e-15, "maxfev": 200 * len(theta),
                         "initial_simplex": np.clip(simplex, lo, hi)},
            )  # fmt: skip
            theta = min((theta, fit.x), key=self.loss)
        self.last_diverged = 0
        return self.loss(theta), dict(zip(self.param_names, map(float, theta)))

    def _set_optimum(self, window: float, n_windows: int, stride: float, data_seed: int) -> None:
        """Exact (noise-free), frozen (registered settings) or left for a lazy ``polish()``."""
        self._optimum: tuple[float, list[dict[str, float]]] | None = None
        self.optimum_is_exact = self.obs_noise == 0
        if self.optimum_is_exact:
            self._optimum = (0.0, [dict(self.true_params)])
            return
        default = (
            window == self.default_window
            and n_windows == self.default_n_windows
            and stride == max(self.default_stride, self.default_window)
            and data_seed == self.default_data_seed
        )
        if default and self.obs_noise in self.FROZEN:
            value, theta = self.FROZEN[self.obs_noise]
            self._optimum = (float(value), [dict(zip(self.param_names, map(float, theta)))])

    def _known_optimum(self) -> tuple[float, list[dict[str, float]]]:
        if self._optimum is None:  # other settings with noise: polish on first use
            value, best = self.polish()
            self._optimum = (value, [best])
        return self._optimum

    @property
    def optimal_value(self) -> float:  # type: ignore[override]
        """The minimum: 0 without observation noise, else the (frozen) polished minimum."""
        return self._known_optimum()[0]

    @property
    def optimal_params(self) -> list[dict[str, float]]:  # type: ignore[override]
        """``[theta*]`` without observation noise, else ``[polished minimizer]``."""
        return [dict(p) for p in self._known_optimum()[1]]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, obs_noise={self.obs_noise!r}, "
            f"window={self.window!r}, n_windows={self.n_windows!r})"
        )


def _whole(length: float, unit: float) -> int | None:
    """``length / unit`` when it is a whole number (to 1e-9), else ``None``."""
    ratio = float(length) / unit
    return int(round(ratio)) if abs(ratio - round(ratio)) < 1e-9 else None


# --------------------------------------------------------------------------- Lorenz-63


@register("lorenz63_param")
class Lorenz63Inference(ShootingInference):
    """Lorenz-63 ``(sigma, rho, beta) = (10, 28, 8/3)`` from 1 %-noisy observations.

    Box ``sigma`` in [4, 20], ``rho`` in [15, 50], ``beta`` in [1, 6] (``theta*``
    at 37 %, 37 % and 33 % of the widths). RK4 with ``dt = 0.01``, observations
    every 0.02; 20 windows of 0.5 time units (0.45 Lyapunov times, MLE 0.906),
    one per time unit. Smooth and unimodal. About 1.5 ms per evaluation.
    """

    field = staticmethod(lorenz63)
    param_names = ("sigma", "rho", "beta")
    true_values = (10.0, 28.0, 8.0 / 3.0)
    bounds = ((4.0, 20.0), (15.0, 50.0), (1.0, 6.0))
    x0 = (1.0, 1.0, 1.0)
    eval_seconds = 1.5e-3  # CPU seconds per evaluation, measured on one core
    FROZEN = {
        0.01: (0.0006815102545011188, (9.67143533727985, 28.10890009970525, 2.6495399123285437))
    }


@register("lorenz63_param_rugged")
class Lorenz63InferenceRugged(Lorenz63Inference):
    """``lorenz63_param`` with 20 contiguous windows of 2 time units (1.8 Lyapunov times).

    Deliberately rugged: 10-20 local minima along each 1-D slice through
    ``theta*``; random points score 0.6-4. Noise-free observations by default,
    so the minimum is exactly 0 at ``theta*``. About 6.4 ms per evaluation.
    """

    default_window = 2.0
    eval_seconds = 6.4e-3
    default_obs_noise = 0.0
    FROZEN = {}


# --------------------------------------------------------------------------- Rossler


@register("rossler_param")
class RosslerInference(ShootingInference):
    """Rossler ``(a, b, c) = (0.2, 0.2, 5.7)`` from 1 %-noisy observations.

    Box ``a`` in [0.05, 0.45], ``b`` in [0.05, 1], ``c`` in [2, 12] (``theta*``
    at 38 %, 16 % and 37 %); large ``a`` can make trajectories escape (capped).
    RK4 with ``dt = 0.05``, observations every 0.1; 20 windows of 3 time units
    (0.2 Lyapunov times, MLE about 0.07), one every 10. About 1.7 ms per evaluation.
    """

    field = staticmethod(rossler)
    param_names = ("a", "b", "c")
    true_values = (0.2, 0.2, 5.7)
    bounds = ((0.05, 0.45), (0.05, 1.0), (2.0, 12.0))
    x0 = (1.0, 1.0, 0.0)
    dt = 0.05
    spinup = 200.0
    default_window = 3.0
    default_stride = 10.0
    eval_seconds = 1.7e-3  # CPU seconds per evaluation, measured on one core
    FROZEN = {
        0.01: (
            0.00028212920623145725,
            (0.20288007998320826, 0.19479834333124835, 5.757845047780298),
        )
    }


@register("rossler_param_rugged")
class RosslerInferenceRugged(RosslerInference):
    """``rossler_param`` with 20 contiguous windows of 36 time units (about 2.6 Lyapunov times).

    Deliberately rugged in ``a`` and ``c`` (about 20 local minima along their
    slices through ``theta*``); about 10 % of random points have a diverging
    window. Noise-free observations by default, so the minimum is exactly 0 at
    ``theta*``. About 21 ms per evaluation.
    """

    default_window = 36.0
    eval_seconds = 2.1e-2
    default_obs_noise = 0.0
    FROZEN = {}


# --------------------------------------------------------------------------- Lorenz-96


def _l96_forcing(n: int) -> tuple[float, ...]:
    """The heterogeneous true forcing ``F_i = 8 + 2 sin(2 pi i / n)``, in [6, 10]."""
    return tuple(8.0 + 2.0 * math.sin(2.0 * math.pi * i / n) for i in range(n))


@register("lorenz96_forcing_d10")
class Lorenz96Forcing(ShootingInference):
    """Per-site forcing ``F_1 .. F_n`` of Lorenz-96 (``n = 10``) from 1 %-noisy observations.

    True forcing ``F_i = 8 + 2 sin(2 pi (i - 1) / n)`` (in [6, 10]), box
    ``[2, 12]`` per site. RK4 with ``dt = 0.01``, observations every 0.02; 20
    windows of 0.3 time units, one per time unit. The dynamics are linear in
    ``F`` and the windows short, so the landscape is smooth and close to
    quadratic: a scalable-dimension task with a known optimum. About 2.5 ms per
    evaluation for both sizes.

    Args:
        n_sites: Number of sites and parameters (``>= 4``).
        **kwargs: ``ShootingInference`` arguments.
    """

    field = staticmethod(lorenz96)
    default_n_sites: ClassVar[int] = 10
    default_window = 0.3
    eval_seconds = 2.5e-3
    FROZEN = {
        0.01: (
            0.00025967323211687886,
            (
                7.9704186076995445,
                9.267859464322227,
                9.927853211839759,
                9.928462306013182,
                9.054837210718555,
                8.077171630363953,
                6.81566810056184,
                6.142843423767093,
                6.046417626729257,
                6.76517495757709,
            ),
        )
    }

    def __init__(self, n_sites: int | None = None, **kwargs: Any) -> None:
        n = self.default_n_sites if n_sites is None else n_sites
        if isinstance(n, bool) or not isinstance(n, int) or n < 4:
            raise ValueError(f"{type(self).__name__}: n_sites must be an integer >= 4, got {n!r}.")
        self.n_sites = n
        self.param_names = tuple(f"F{i + 1}" for i in range(n))
        self.true_values = _l96_forcing(n)
        self.bounds = ((2.0, 12.0),) * n
        self.x0 = tuple(f + 0.01 * (i + 1) for i, f in enumerate(self.true_values))
        if n != self.default_n_sites:
            self.FROZEN = {}
        super().__init__(**kwargs)


@register("lorenz96_forcing_d40")
class Lorenz96Forcing40(Lorenz96Forcing):
    """``lorenz96_forcing_d10`` with 40 sites (40 parameters); MLE about 1.7 at ``F = 8``."""

    default_n_sites = 40
    FROZEN = {
        0.01: (
            0.0002739727503196625,
            (
                8.000423943375065,
                8.26898349202872,
                8.702084470499841,
                9.132695195097257,
                9.133506205500334,
                9.505404860952737,
                9.50400561337682,
                9.608683016265758,
                9.84974232572851,
                9.968985613469455,
                10.046357234901398,
                10.082118113316698,
                9.97267237477314,
                9.704347957629576,
                9.811842243874732,
                9.497532119585207,
                9.20879833402766,
                8.940970589317407,
                8.605568096475182,
                8.329687226681639,
                7.882308320259999,
                7.629487767322875,
                7.228043201479323,
                7.142043056902653,
                6.81448868471188,
                6.5495506201951,
                6.407646004055279,
                6.239695770184313,
                6.17169103900101,
                5.996829454698799,
                6.0390839000878485,
                6.002003155331238,
                6.081543639229544,
                6.240108146808173,
                6.336780250153121,
                6.60644555335098,
                6.788639001319664,
                7.057834982702604,
                7.328628394069895,
                7.463591258804298,
            ),
        )
    }
