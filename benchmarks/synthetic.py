"""Synthetic test functions with known optima.

The formulas come from ``botorch.test_functions`` (imported lazily, on the
first evaluation), evaluated in double precision. Parameters are named
``x1 .. xd`` and keep the function's native bounds (Ackley excepted, see
``Ackley10``), so values are in the function's own units. All are noise-free
(``noise_std`` adds Gaussian noise on request), minimized, with exact optima:

=================  ====  ========================  ==============================
registry name      dim   box                       minimum (minimizer)
=================  ====  ========================  ==============================
``branin``         2     [-5, 10] x [0, 15]        0.397887 (three)
``hartmann6``      6     [0, 1]^6                  -3.32237
``hartmann6_d25``  25    [0, 1]^25 (19 inert)      -3.32237
``hartmann6_d100`` 100   [0, 1]^100 (94 inert)     -3.32237
``ackley10``       10    [-5, 10]^10               0 (0, ..., 0)
``levy10``         10    [-10, 10]^10              0 (1, ..., 1)
``styblinski_tang10`` 10 [-5, 5]^10                -391.661657 (-2.903534, ...)
=================  ====  ========================  ==============================

Each costs well under a millisecond per evaluation (``eval_seconds``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bayesopt.space import Float
from benchmarks.base import Task, register

__all__ = [
    "Ackley10",
    "BotorchTask",
    "Branin",
    "Hartmann6",
    "Hartmann6Embedded",
    "Hartmann6Embedded25",
    "Levy10",
    "StyblinskiTang10",
]


class BotorchTask(Task):
    """A task whose objective is a ``botorch.test_functions`` synthetic function.

    Subclasses set ``bounds`` (one ``(low, high)`` per dimension),
    ``botorch_function`` (the class name in ``botorch.test_functions``) and
    ``botorch_kwargs``; the space is ``{"x1": Float(*bounds[0]), ...}``.

    Args:
        noise_std: Observation-noise standard deviation (``>= 0``).
        seed: Seed of the noise generator.
        name: Overrides the registry name.
    """

    bounds: Sequence[tuple[float, float]] = ()
    eval_seconds = 1e-4  # measured 60-130 us per call (validation included), 2-core CPU
    botorch_function: str = ""
    botorch_kwargs: Mapping[str, Any] = {}

    def __init__(
        self, noise_std: float = 0.0, seed: int | None = None, name: str | None = None
    ) -> None:
        super().__init__(noise_std=noise_std, seed=seed, name=name)
        self.space = {f"x{i + 1}": Float(lo, hi) for i, (lo, hi) in enumerate(self.bounds)}
        self._function = None

    def _botorch(self) -> Any:
        """The (cached) noise-free botorch test function."""
        if self._function is None:
            import torch
            from botorch import test_functions

            cls = getattr(test_functions, self.botorch_function)
            function = cls(**self.botorch_kwargs, dtype=torch.float64)
            _buffers_to_float64(function)
            self._function = function
        return self._function

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """The noise-free function value at ``params``."""
        import torch

        x = torch.tensor([[float(params[k]) for k in self.space]], dtype=torch.float64)
        with torch.no_grad():
            return float(self._botorch().evaluate_true(x).item())

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_function"] = None  # rebuilt on demand; keeps pickles torch-free
        return state


@register("branin")
class Branin(BotorchTask):
    """Branin-Hoo, 2-D: ``x1`` in ``[-5, 10]``, ``x2`` in ``[0, 15]``.

    Three global minima, value ``0.397887...``, at ``(-pi, 12.275)``,
    ``(pi, 2.275)`` and ``(3 pi, 2.475)``.
    """

    bounds = ((-5.0, 10.0), (0.0, 15.0))
    botorch_function = "Branin"
    optimal_value = 0.397887357729738
    optimal_params = [
        {"x1": -math.pi, "x2": 12.275},
        {"x1": math.pi, "x2": 2.275},
        {"x1": 3 * math.pi, "x2": 2.475},
    ]


@register("hartmann6")
class Hartmann6(BotorchTask):
    """Hartmann-6 on ``[0, 1]^6``; one global minimum, value ``-3.32237``."""

    bounds = ((0.0, 1.0),) * 6
    botorch_function = "Hartmann"
    botorch_kwargs = {"dim": 6}
    optimal_value = -3.32236801141551
    optimal_params = [
        dict(
            zip(
                [f"x{i}" for i in range(1, 7)],
                [0.20168952, 0.15001069, 0.47687398, 0.27533243, 0.31165162, 0.65730054],
            )
        )
    ]


@register("hartmann6_d100")
class Hartmann6Embedded(BotorchTask):
    """Hartmann-6 embedded in ``[0, 1]^dim``: six active coordinates, the rest inert.

    The objective is Hartmann-6 of the ``active_dims`` coordinates (by default
    the first six, ``x1 .. x6``); the other ``dim - 6`` parameters do not change
    the value. The minimum is Hartmann-6's, ``-3.32237``, whatever the inert
    coordinates are (``optimal_params`` sets them to 0.5). The standard
    test of high-dimensional BO with low effective dimension (Wang et al.'s
    REMBO, 2016; Eriksson and Jankowiak's SAASBO, 2021).

    Args:
        dim: Number of parameters (``>= 6``); registered as ``hartmann6_d100``
            with ``dim=100`` and as ``hartmann6_d25`` with ``dim=25``.
        active_dims: Six distinct 0-based column indices carrying Hartmann-6's
            ``x1 .. x6`` in that order (default ``0 .. 5``).
        noise_std: Observation-noise standard deviation (``>= 0``).
        seed: Seed of the noise generator.
        name: Overrides the registry name.
    """

    default_dim: int = 100
    botorch_function = "Hartmann"
    botorch_kwargs = {"dim": 6}
    optimal_value = Hartmann6.optimal_value

    def __init__(
        self,
        dim: int | None = None,
        active_dims: Sequence[int] | None = None,
        noise_std: float = 0.0,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        cls = type(self).__name__
        dim = self.default_dim if dim is None else dim
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 6:
            raise ValueError(f"{cls}: dim must be an integer >= 6, got {dim!r}.")
        active = tuple(range(6)) if active_dims is None else tuple(active_dims)
        if (
            len(active) != 6
            or len(set(active)) != 6
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in active)
            or not all(0 <= i < dim for i in active)
        ):
            raise ValueError(
                f"{cls}: active_dims must be 6 distinct integers in [0, {dim}), "
                f"got {active_dims!r}."
            )
        self.bounds = ((0.0, 1.0),) * dim
        self.active_dims = active
        super().__init__(noise_std=noise_std, seed=seed, name=name)
        names = list(self.space)
        optimum = dict.fromkeys(names, 0.5)
        for i, value in zip(active, Hartmann6.optimal_params[0].values()):
            optimum[names[i]] = value
        self.optimal_params = [optimum]

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """Hartmann-6 of the active coordinates of ``params``."""
        import torch

        names = list(self.space)
        x = torch.tensor(
            [[float(params[names[i]]) for i in self.active_dims]], dtype=torch.float64
        )
        with torch.no_grad():
            return float(self._botorch().evaluate_true(x).item())


@register("hartmann6_d25")
class Hartmann6Embedded25(Hartmann6Embedded):
    """``Hartmann6Embedded`` with ``dim=25`` by default (19 inert parameters)."""

    default_dim = 25


@register("ackley10")
class Ackley10(BotorchTask):
    """Ackley, 10-D, on ``[-5, 10]^10``; one global minimum, value 0, at the origin.

    The box is the one of TuRBO (Eriksson et al., 2019) and BoTorch's TuRBO
    tutorial, not the textbook ``[-32.768, 32.768]^10``: the textbook box has
    the minimum exactly at its centre, which rewards any optimizer that probes
    the centre first. Many shallow local minima on a bowl; the plateau far from
    the origin is near 21.6.
    """

    bounds = ((-5.0, 10.0),) * 10
    botorch_function = "Ackley"
    botorch_kwargs = {"dim": 10}
    optimal_value = 0.0
    optimal_params = [{f"x{i}": 0.0 for i in range(1, 11)}]


@register("levy10")
class Levy10(BotorchTask):
    """Levy, 10-D, on ``[-10, 10]^10``; one global minimum, value 0, at ``(1, ..., 1)``."""

    bounds = ((-10.0, 10.0),) * 10
    botorch_function = "Levy"
    botorch_kwargs = {"dim": 10}
    optimal_value = 0.0
    optimal_params = [{f"x{i}": 1.0 for i in range(1, 11)}]


# The minimizer of x^4 - 16 x^2 + 5 x: the smallest root of 4 x^3 - 32 x + 5 (to 17 digits).
_ST_ARGMIN = -2.9035340277711771


@register("styblinski_tang10")
class StyblinskiTang10(BotorchTask):
    """Styblinski-Tang, 10-D, on ``[-5, 5]^10``; minimum ``-391.661657`` at ``x_i = -2.903534``.

    Separable: ``sum_i (x_i^4 - 16 x_i^2 + 5 x_i) / 2``; each coordinate has a
    second, shallower minimum near ``2.7468``, so there are ``2^10`` local minima.
    """

    bounds = ((-5.0, 5.0),) * 10
    botorch_function = "StyblinskiTang"
    botorch_kwargs = {"dim": 10}
    optimal_value = -391.66165703771415
    optimal_params = [{f"x{i}": _ST_ARGMIN for i in range(1, 11)}]


def _buffers_to_float64(module: Any) -> None:
    """Re-create a botorch function's float32 constant tables in float64, in place.

    Some botorch test functions (Hartmann's ``A``, ``P``, ``ALPHA``, ...)
    register their constants as float32 buffers whatever ``dtype`` they are
    given, which perturbs values in the 8th digit. The tables are short decimal
    literals, so the shortest decimal that round-trips each float32 entry is
    the literal itself; it is parsed again as a float64.
    """
    import numpy as np
    import torch

    for name, buf in list(module.named_buffers(recurse=False)):
        if buf.dtype != torch.float32:
            continue
        exact = [
            float(np.format_float_positional(v, unique=True))
            for v in buf.detach().cpu().numpy().ravel()
        ]
        module.register_buffer(
            name, torch.tensor(exact, dtype=torch.float64, device=buf.device).reshape(buf.shape)
        )
