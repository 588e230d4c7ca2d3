"""Parameter inference for any continuous flow of the ``dysts`` database, by name.

``DystsInference(system="Lorenz")`` builds the multiple-shooting task of
``benchmarks.chaos`` for one of the flows of William Gilpin's ``dysts``
package (the optional extra ``bayesopt[chaos]``): ``dysts`` supplies the
equations, the published parameters (``theta*``), an initial condition on the
attractor, the dominant period and an estimate of the largest Lyapunov
exponent; the integration is our batched RK4 (``benchmarks.dynamics``), not
``dysts``'s default implicit solver at tolerance 1e-12 (20-30 s per trajectory).

Design, derived from the metadata:

- Parameters: every nonzero scalar parameter of the system (or the subset
  named by ``params``); box ``[0.6, 1.5] x theta*`` per parameter (reversed for
  negative values), so ``theta*`` sits at 44 % of each width.
- Step: ``period / 100`` (halved up to three times until a 20-period run from
  the initial condition stays finite), observations every second step.
- Windows: 20 windows of half a Lyapunov time (at least two observations),
  starting two window lengths apart; spin-up of 10 periods.
- Observation noise, loss, divergence cap and optimum as in ``benchmarks.chaos``;
  with noise the optimum is polished on first use (not frozen: it depends on
  the system), so ``optimum_is_exact`` is ``False``.

Metric: normalized multiple-shooting MSE, minimized; cost: a few ms per
evaluation for the vectorized systems. Flows whose equations ``dysts`` writes
as a method reading ``self.<param>`` are called through it (batched when the
batched call matches row by row, else one state at a time: slower); flows
whose equations depend on time are integrated in absolute time, each window
from its own start; delay equations are refused.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.base import register
from benchmarks.chaos import ShootingInference
from benchmarks.dynamics import rk4

__all__ = ["DystsInference"]

_MISSING = (
    "DystsInference needs the optional dependency 'dysts': pip install 'bayesopt[chaos]' "
    "(or pip install dysts)."
)


def _import_dysts() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Numba not installed")
            import dysts.flows as flows
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(_MISSING) from err
    return flows


@register("dysts_param")
class DystsInference(ShootingInference):
    """Multiple-shooting parameter inference of the ``dysts`` flow named ``system``.

    Args:
        system: A class name of ``dysts.flows`` (``"Lorenz"``, ``"Rossler"``,
            ``"Thomas"``, ...).
        params: Names of the parameters to infer (default: every nonzero
            scalar one); the others stay at their published values.
        obs_noise: Observation noise as a fraction of each coordinate's std.
        noise_std: Gaussian noise added to every evaluation (``Task``).
        seed: Seed of that evaluation noise.
        name: Overrides the registry name (default ``dysts_<system>``).
        **kwargs: Other ``ShootingInference`` arguments (``window``,
            ``n_windows``, ``stride``, ``data_seed``).

    Raises:
        ImportError: ``dysts`` is not installed (names the extra).
        ValueError: an unknown system, a delay equation, unknown ``params``.
    """

    eval_seconds = 5e-3

    def __init__(
        self,
        system: str = "Lorenz",
        params: Sequence[str] | None = None,
        obs_noise: float | None = None,
        noise_std: float = 0.0,
        seed: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        flows = _import_dysts()
        cls = type(self).__name__
        model_cls = getattr(flows, str(system), None)
        if not isinstance(model_cls, type):
            raise ValueError(f"{cls}: system {system!r} is not a flow of dysts.flows.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = model_cls()
        if getattr(model, "delay", False):
            raise ValueError(f"{cls}: system {system!r} is a delay equation; not supported.")
        self.system, self._model = str(system), model
        self._names = sorted(model.params)
        self._values = [np.asarray(model.params[k], dtype=float) for k in self._names]
        scalar = [k for k, v in zip(self._names, self._values) if v.ndim == 0 and v != 0]
        chosen = scalar if params is None else [str(p) for p in params]
        if not scalar:
            raise ValueError(f"{cls}: system {system!r} has no nonzero scalar parameter to infer.")
        unknown = [p for p in chosen if p not in scalar]
        if unknown or not chosen:
            raise ValueError(
                f"{cls}: params must be nonzero scalar parameters of {system}, one of "
                f"{scalar!r}; got {params!r}."
            )
        self.param_names = tuple(chosen)
        self.true_values = tuple(float(model.params[k]) for k in chosen)
        self.bounds = tuple(
            (0.6 * v, 1.5 * v) if v > 0 else (1.5 * v, 0.6 * v) for v in self.true_values
        )
        self._slots = [self._names.index(k) for k in chosen]
        self._mode = self._probe()
        self.x0 = tuple(float(v) for v in np.ravel(model.ic))
        period = float(model.period)
        self.dt = self._stable_step(period)
        self.obs_every = 2
        self.spinup = _round_to(10 * period, self.dt)
        obs_dt = self.dt * self.obs_every
        lyap = float(getattr(model, "maximum_lyapunov_estimated", 0.0) or 0.0)
        horizon = 0.5 / lyap if lyap > 0 else period / 2
        self.default_window = max(2, round(horizon / obs_dt)) * obs_dt
        self.default_stride = 2 * self.default_window
        self.FROZEN = {}
        super().__init__(
            obs_noise=obs_noise,
            noise_std=noise_std,
            seed=seed,
            name=name if name is not None else f"dysts_{system}",
            **kwargs,
        )

    def field(self, x: np.ndarray, theta: np.ndarray, t: Any = 0.0) -> np.ndarray:
        """The vector field at states ``x`` (``k x n``), parameters ``theta``, times ``t``.

        ``t`` is a scalar or one time per state (shape ``k``); autonomous flows ignore it.
        """
        model = self._model
        full = list(self._values)
        for slot, value in zip(self._slots, theta):
            full[slot] = value
        if self._mode == "jit":  # the common case: a staticmethod of scalars, elementwise
            return _stack(model._rhs(*x.T, t, *full))
        # A method reading self.<param> or self.param_list: set both for the call.
        saved = {k: getattr(model, k) for k in (*self.param_names, "param_list")}
        for k, value in zip(self.param_names, theta):
            setattr(model, k, value)
        model.param_list = full
        try:
            if self._mode == "batch":
                return np.asarray(model.rhs(x.T, t), dtype=float).T
            times = np.broadcast_to(np.asarray(t, dtype=float), x.shape[:1])
            return np.stack(
                [np.asarray(model.rhs(row, ti), dtype=float) for row, ti in zip(x, times)]
            )
        finally:
            for k, value in saved.items():
                setattr(model, k, value)

    def _probe(self) -> str:
        """How to evaluate the flow on a batch: ``"jit"``, ``"batch"`` or ``"rows"``.

        Raises:
            ValueError: the equations ignore the parameters set this way.
        """
        ic = np.ravel(np.asarray(self._model.ic, float))
        k = ic.size + 2  # a batch size unlike the dimension, so no transpose goes unnoticed
        x = ic * (1.0 + 0.01 * np.arange(k))[:, None]
        theta = np.asarray(self.true_values)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for mode in ("jit", "batch", "rows"):
                self._mode = mode
                try:
                    out = self.field(x, theta)
                except Exception:  # noqa: BLE001 - this mode does not apply
                    continue
                if out.shape == x.shape:
                    break
            else:
                raise ValueError(
                    f"{type(self).__name__}: cannot evaluate the equations of {self.system!r}."
                )
            if self._mode == "batch":  # trust a batched call only if it matches row by row
                self._mode = "rows"
                if np.allclose(self.field(x, theta), out, rtol=1e-12, atol=0.0):
                    self._mode = "batch"
            moved = self.field(x, theta * 1.1)
            self.time_dependent = not np.array_equal(self.field(x, theta, 1.37), out)
        if np.array_equal(moved, out):
            raise ValueError(
                f"{type(self).__name__}: the equations of {self.system!r} do not respond to "
                f"the parameters {list(self.param_names)!r}."
            )
        return self._mode

    def _stable_step(self, period: float) -> float:
        """``period / 100``, halved until a 20-period run from the initial condition is finite."""
        theta = np.asarray(self.true_values)
        for pts in (100, 200, 400, 800):
            dt = period / pts
            clock = 0.0 if self.time_dependent else None
            run = rk4(self.field, np.atleast_2d(self.x0), theta, dt, 20 * pts, pts, clock)
            if np.all(np.isfinite(run)) and np.abs(run).max() < 1e8:
                return dt
        raise ValueError(
            f"{type(self).__name__}: RK4 diverges on {self.system!r} even at period / 800."
        )


def _stack(components: Sequence[Any]) -> np.ndarray:
    """Stack per-coordinate derivatives (arrays of ``k`` or scalars) into ``k x n``."""
    return np.stack(np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in components]), axis=1)


def _round_to(length: float, unit: float) -> float:
    """``length`` rounded up to a whole number of ``unit``."""
    return math.ceil(length / unit - 1e-9) * unit
